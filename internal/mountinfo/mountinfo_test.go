//go:build linux

package mountinfo

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	table := `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
36 22 0:32 /sub /mnt/with\040space rw,nosuid,nodev - fuse.nfslockfs /srv/back\134slash rw,user_id=0
37 22 0:33 / /short rw
`
	want := []Mount{
		{Root: "/", Mountpoint: "/", FSType: "ext4", Source: "/dev/vda"},
		{Root: "/sub", Mountpoint: "/mnt/with space", FSType: "fuse.nfslockfs", Source: `/srv/back\slash`},
	}
	if got := parse(table); !slices.Equal(got, want) {
		t.Errorf("parse:\n got %+v\nwant %+v", got, want)
	}
}

func TestReadFindsRoot(t *testing.T) {
	mounts, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(mounts, func(m Mount) bool { return m.Mountpoint == "/" }) {
		t.Errorf("no mount at / in %+v", mounts)
	}
}
