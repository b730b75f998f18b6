package afxdp

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrConfig reports an invalid UMEM, socket or program setting.
	ErrConfig = errors.New("afxdp: invalid configuration")
	// ErrClosed reports use of a closed UMEM, socket or program.
	ErrClosed = errors.New("afxdp: closed")
	// ErrQueueInUse reports a second socket for a device queue that already
	// has one on this UMEM.
	ErrQueueInUse = errors.New("afxdp: queue already has a socket")
	// ErrUMEMBusy reports closing a UMEM that still has sockets.
	ErrUMEMBusy = errors.New("afxdp: UMEM still has sockets")
	// ErrUnsupported reports a kernel or device without a needed feature
	// (AF_XDP, XDP, the requested bind mode).
	ErrUnsupported = errors.New("afxdp: not supported here")
)
