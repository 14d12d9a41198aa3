package main

import (
	"slices"
	"testing"

	"github.com/nodebake/nodebake/internal/docs"
)

// TestExitCodeTable: the README's one table of exit codes lists, in this
// command's column, exactly the codes it returns.
func TestExitCodeTable(t *testing.T) {
	listed, err := docs.ExitCodes("../../README.md", "`imagebuild`")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{exitOK, exitFailed, exitBadInput, exitDrift}; !slices.Equal(listed, want) {
		t.Errorf("the README lists codes %v for imagebuild; it returns %v", listed, want)
	}
}
