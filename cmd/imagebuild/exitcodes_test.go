package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestExitCodeTable: the README's one table of exit codes lists, in this
// command's column, exactly the codes the command returns.
func TestExitCodeTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "### Exit codes\n")
	if !ok {
		t.Fatal("the README has no Exit codes section")
	}
	var listed []int
	for _, line := range strings.Split(table, "\n")[3:] {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			break
		}
		code, err := strconv.Atoi(strings.TrimSpace(cells[0]))
		if err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		if c := strings.TrimSpace(cells[1]); c != "" && c != "—" {
			listed = append(listed, code)
		}
	}
	if want := []int{exitOK, exitFailed, exitBadInput, exitDrift}; !slices.Equal(listed, want) {
		t.Errorf("the README lists codes %v for imagebuild; it returns %v", listed, want)
	}
}
