package diskimage

import "testing"

func TestPlanIsDerivedFromTheDigest(t *testing.T) {
	a := Plan("digest-a", 256<<20, 2<<30, 1<<30)
	b := Plan("digest-a", 256<<20, 2<<30, 1<<30)
	c := Plan("digest-b", 256<<20, 2<<30, 1<<30)
	if a.DiskGUID != b.DiskGUID || a.Part(RoleState).GUID != b.Part(RoleState).GUID {
		t.Error("the same digest gave two layouts")
	}
	if a.DiskGUID == c.DiskGUID || a.Part(RoleRootA).GUID == c.Part(RoleRootA).GUID || a.StateUUID == c.StateUUID {
		t.Error("two digests share identities")
	}
	seen := map[string]bool{a.DiskGUID: true, a.StateUUID: true}
	for _, p := range a.Partitions {
		if seen[p.GUID] {
			t.Errorf("GUID %s used twice", p.GUID)
		}
		seen[p.GUID] = true
	}
}

func TestPlanLayout(t *testing.T) {
	l := Plan("d", 256<<20, 2<<30, 1<<30)
	want := []struct {
		name        string
		start, size int64
	}{
		{RoleESP, 1 << 20, 256 << 20},
		{RoleRootA, 257 << 20, 2 << 30},
		{RoleRootB, 257<<20 + 2<<30, 2 << 30},
		{RoleState, 257<<20 + 4<<30, 1 << 30},
	}
	for i, w := range want {
		p := l.Partitions[i]
		if p.Name != w.name || p.Start != w.start || p.Size != w.size || p.Number != i+1 {
			t.Errorf("partition %d = %+v, want %+v", i+1, p, w)
		}
	}
	if l.Size != 257<<20+5<<30+1<<20 {
		t.Errorf("disk size %d", l.Size)
	}
}
