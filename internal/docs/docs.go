// Package docs reads what the README promises, for the tests that hold
// the code to it.
package docs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ExitCodes reads the README's one table of exit codes (under "### Exit
// codes") and returns the codes whose cell in the column headed column
// says something.
func ExitCodes(readme, column string) ([]int, error) {
	data, err := os.ReadFile(readme)
	if err != nil {
		return nil, err
	}
	_, table, ok := strings.Cut(string(data), "### Exit codes\n")
	if !ok {
		return nil, errors.New("the README has no Exit codes section")
	}
	rows := strings.Split(strings.TrimLeft(table, "\n"), "\n")
	col := slices.Index(cells(rows[0]), column)
	if col < 1 {
		return nil, fmt.Errorf("the exit code table has no column %s", column)
	}
	var codes []int
	for _, row := range rows[2:] {
		c := cells(row)
		if c == nil {
			break
		}
		code, err := strconv.Atoi(c[0])
		if err != nil || len(c) <= col {
			return nil, fmt.Errorf("exit code row %q", row)
		}
		if c[col] != "" && c[col] != "—" {
			codes = append(codes, code)
		}
	}
	return codes, nil
}

// cells are a Markdown table row's cells, trimmed; nil for a line that is
// not a row.
func cells(row string) []string {
	if !strings.HasPrefix(row, "|") {
		return nil
	}
	var out []string
	for _, c := range strings.Split(strings.Trim(row, "|"), "|") {
		out = append(out, strings.TrimSpace(c))
	}
	return out
}
