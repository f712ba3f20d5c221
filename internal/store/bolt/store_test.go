package bolt_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		in      bolt.Options
		want    bolt.Options
		wantErr error
	}{
		{"Defaults", bolt.Options{}, bolt.Options{WatchHistory: bolt.DefaultWatchHistory, WatchBuffer: bolt.DefaultWatchBuffer}, nil},
		{"Kept", bolt.Options{WatchHistory: 5, WatchBuffer: 3, NoSync: true}, bolt.Options{WatchHistory: 5, WatchBuffer: 3, NoSync: true}, nil},
		{"NegativeHistory", bolt.Options{WatchHistory: -1}, bolt.Options{}, errdefs.ErrInvalidArgument},
		{"NegativeBuffer", bolt.Options{WatchBuffer: -1}, bolt.Options{}, errdefs.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.in
			err := o.Validate()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if o.Logger == nil {
				t.Error("Validate left Logger nil")
			}
			o.Logger = nil
			if o != tc.want {
				t.Errorf("Validate() filled %+v, want %+v", o, tc.want)
			}
		})
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	open(t, path, bolt.Options{})
	if s, err := bolt.Open(path, bolt.Options{}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("second Open of a file in use = %v, want ErrFailedPrecondition", err)
	}
}

func TestTxUseAfterReturn(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "berth.db"), bolt.Options{NoSync: true})
	var (
		kept   store.Tx
		keptRO store.ReadTx
	)
	if _, err := s.Update(t.Context(), func(tx store.Tx) error { kept = tx; return tx.Put("/a", nil) }); err != nil {
		t.Fatal(err)
	}
	if err := s.View(t.Context(), func(tx store.ReadTx) error { keptRO = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := kept.Put("/b", nil); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Put on a finished transaction = %v, want ErrFailedPrecondition", err)
	}
	if _, _, err := keptRO.Get("/a"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Get on a finished transaction = %v, want ErrFailedPrecondition", err)
	}
}
