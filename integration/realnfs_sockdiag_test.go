package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cutNFSConnections destroys every established TCP socket of the guest
// whose peer is port 2049, the NFS clients' connections to the server, as
// ss -K does (sock_diag's SOCK_DESTROY: the socket fails at once, the
// server gets a reset), without starting a process for each cut. It
// returns how many it destroyed.
func cutNFSConnections() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	const established = 1 << 1 // 1 << TCP_ESTABLISHED
	var ids []inetDiagSockID
	err = sockDiag(fd, unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP, inetDiagSockID{}, established, func(data []byte) {
		var id inetDiagSockID
		if len(data) >= 4+int(unsafe.Sizeof(id)) {
			binary.Read(bytes.NewReader(data[4:]), binary.NativeEndian, &id) // after family, state, timer, retrans
			if binary.BigEndian.Uint16(id.Dport[:]) == 2049 {
				ids = append(ids, id)
			}
		}
	})
	if err != nil {
		return 0, err
	}
	cut := 0
	for _, id := range ids {
		if sockDiag(fd, unix.SOCK_DESTROY, unix.NLM_F_ACK, id, established, nil) == nil {
			cut++ // a socket closed meanwhile is no error worth reporting
		}
	}
	return cut, nil
}

// inetDiagSockID and inetDiagReqV2 are the kernel's struct inet_diag_sockid
// and struct inet_diag_req_v2 (linux/inet_diag.h).
type inetDiagSockID struct {
	Sport, Dport [2]byte // big-endian
	Src, Dst     [16]byte
	If           uint32
	Cookie       [2]uint32
}

type inetDiagReqV2 struct {
	Family, Protocol, Ext, Pad uint8
	States                     uint32
	ID                         inetDiagSockID
}

// sockDiag sends one sock_diag request for IPv4 TCP sockets and calls each
// with every reply's payload until the kernel is done; an error reply is
// returned as an error.
func sockDiag(fd int, typ, flags uint16, id inetDiagSockID, states uint32, each func([]byte)) error {
	var msg bytes.Buffer
	req := inetDiagReqV2{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: states, ID: id}
	hdr := unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr + unsafe.Sizeof(req)), Type: typ, Flags: unix.NLM_F_REQUEST | flags, Seq: 1}
	binary.Write(&msg, binary.NativeEndian, hdr)
	binary.Write(&msg, binary.NativeEndian, req)
	if err := unix.Sendto(fd, msg.Bytes(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
					return syscall.Errno(-errno)
				}
				return nil // the ACK
			default:
				if each != nil {
					each(m.Data)
				}
			}
		}
	}
}
