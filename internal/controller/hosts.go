package controller

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// HostsFile keeps a block of lines in a hosts file (/etc/hosts) that maps
// the load balancers' DNS names to their loopback addresses, so that the
// names resolve on the host for every program. The block is marked with
// Owner, so several Berths can share the file, and is rewritten in place
// (a container's /etc/hosts is a bind mount, which a rename would not
// replace). Only lines inside its own block are ever touched.
type HostsFile struct {
	// Path is the file, e.g. /etc/hosts.
	Path string
	// Owner tells this Berth's block from others', e.g. its data directory.
	Owner string

	mu   sync.Mutex
	last map[string]string
}

func (h *HostsFile) markers() (begin, end string) {
	return "# BEGIN berth load balancers " + h.Owner, "# END berth load balancers " + h.Owner
}

// Set makes the block hold exactly entries (DNS name to address); an empty
// map removes the block. It writes only when something changed.
func (h *HostsFile) Set(entries map[string]string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last != nil && mapsEqual(h.last, entries) {
		return nil
	}
	old, err := os.ReadFile(h.Path)
	if err != nil {
		return err
	}
	begin, end := h.markers()
	var kept []string
	inside := false
	for _, line := range strings.SplitAfter(string(old), "\n") {
		switch strings.TrimRight(line, "\n") {
		case begin:
			inside = true
			continue
		case end:
			inside = false
			continue
		}
		if !inside && line != "" {
			kept = append(kept, line)
		}
	}
	var b bytes.Buffer
	for _, l := range kept {
		b.WriteString(l)
	}
	if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	if len(entries) > 0 {
		names := make([]string, 0, len(entries))
		for n := range entries {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintln(&b, begin)
		for _, n := range names {
			fmt.Fprintf(&b, "%s\t%s\n", entries[n], n)
		}
		fmt.Fprintln(&b, end)
	}
	if !bytes.Equal(b.Bytes(), old) {
		f, err := os.OpenFile(h.Path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if _, err := f.Write(b.Bytes()); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	h.last = make(map[string]string, len(entries))
	for k, v := range entries {
		h.last[k] = v
	}
	return nil
}

// Clear removes the block.
func (h *HostsFile) Clear() error { return h.Set(map[string]string{}) }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
