package agent

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestMilestonesOfEachRun: a first boot records when it reached each
// milestone, in seconds since boot, with its run; a run cut short keeps
// what it reached, and the next run records its own, from its own boot.
func TestMilestonesOfEachRun(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	var (
		mu    sync.Mutex // the watch's goroutine reads the clock too
		clock float64
	)
	tick := func() float64 { mu.Lock(); defer mu.Unlock(); clock += 1.5; return clock }
	// The first run is cut inside kubeadm init, which it started.
	first := &fakeNode{root: root, partial: true}
	first.crashAt = 1 + slices.Index(callsOfAnInit(t), "init")
	a, _ := newAgent(root, first, nil)
	a.SinceBoot = tick
	if _, crashed := run(a); !crashed {
		t.Fatal("the first run did not crash")
	}
	mu.Lock()
	clock = 0 // the power comes back: a new boot
	mu.Unlock()
	b, _ := newAgent(root, &fakeNode{root: root}, nil)
	b.SinceBoot = tick
	if err, _ := run(b); err != nil {
		t.Fatal(err)
	}
	st := status(t, root)
	byRun := map[int][]string{}
	at := map[string]float64{}
	for _, m := range st.Milestones {
		byRun[m.Run] = append(byRun[m.Run], m.Name)
		if m.SinceBoot <= 0 {
			t.Errorf("%+v: no time since boot", m)
		}
		at[fmt.Sprint(m.Run, m.Name)] = m.SinceBoot
	}
	// The agent's own milestones come in order; containerd's and the
	// images' are systemd's times (the fake node's 5 s).
	for _, order := range [][]string{
		{"1" + MilestoneAgent, "1" + MilestoneKubeadmStart},
		{"2" + MilestoneAgent, "2" + MilestoneKubeadmDone, "2" + MilestoneRegistered, "2" + MilestoneReady},
		{"2" + MilestoneKubeadmDone, "2" + MilestoneCNI},
	} {
		for i := 1; i < len(order); i++ {
			if at[order[i]] <= at[order[i-1]] {
				t.Errorf("%s at %.1f s, not after %s at %.1f s", order[i], at[order[i]], order[i-1], at[order[i-1]])
			}
		}
	}
	if want := []string{MilestoneAgent, MilestoneContainerd, MilestoneImages, MilestoneImagesWorkloads, MilestoneImagesControlPlane, MilestoneKubeadmStart}; !slices.Equal(byRun[1], want) {
		t.Errorf("the cut run's milestones %q, want %q", byRun[1], want)
	}
	// The second run finished the init kubeadm left (no second init, so
	// no second start), and saw the node registered, its CNI and Ready.
	if st.InitFinish == nil {
		t.Fatalf("the init was not finished: %+v", st)
	}
	got := slices.Clone(byRun[2])
	slices.Sort(got)
	want := []string{MilestoneAgent, MilestoneCNI, MilestoneContainerd, MilestoneImages, MilestoneImagesWorkloads, MilestoneImagesControlPlane, MilestoneKubeadmDone, MilestoneRegistered, MilestoneReady}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the second run's milestones %q, want %q", byRun[2], want)
	}
	for _, p := range st.Phases {
		if p.Started.IsZero() || p.SinceBoot <= 0 || p.Finished.Before(p.Started) {
			t.Errorf("phase %+v: no start", p)
		}
	}
}

// TestMilestonesOfAJoin: a join that runs through records every
// milestone once.
func TestMilestonesOfAJoin(t *testing.T) {
	root := newRoot(t, ignition(kubeadmJoin))
	a, _ := newAgent(root, &fakeNode{root: root}, nil)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range status(t, root).Milestones {
		if m.Run != 1 {
			t.Errorf("%+v: run %d", m, m.Run)
		}
		got = append(got, m.Name)
	}
	slices.Sort(got)
	want := []string{MilestoneAgent, MilestoneCNI, MilestoneContainerd, MilestoneImages, MilestoneImagesWorkloads, MilestoneKubeadmDone,
		MilestoneKubeadmStart, MilestoneRegistered, MilestoneReady}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("milestones %q, want %q", got, want)
	}
}

// callsOfAnInit are the calls a whole init makes to the node.
func callsOfAnInit(t *testing.T) []string {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	n := &fakeNode{root: root}
	a, _ := newAgent(root, n, nil)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	return n.calls
}
