package lb

import "testing"

func TestProcs(t *testing.T) {
	for n, want := range map[int]int{1: 3, 2: 6, 4: 12, 8: 24, 16: 32, 64: 80} {
		if got := Procs(n); got != want {
			t.Errorf("Procs(%d) = %d, want %d", n, got, want)
		}
	}
}
