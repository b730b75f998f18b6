package spd

import "errors"

// Sentinel errors. The control plane gets them wrapped with the policy or ID
// they concern; test for them with errors.Is.
var (
	// ErrDir: the direction is not DirOut, DirIn or DirFwd.
	ErrDir = errors.New("invalid direction")
	// ErrAction: the action is not Protect, Bypass or Discard.
	ErrAction = errors.New("invalid action")
	// ErrTrap: only a Protect policy can be a trap; a trap on a bypass or
	// discard policy would have nothing to negotiate.
	ErrTrap = errors.New("trap on a policy that does not protect")
	// ErrPrefix: a local or remote prefix is missing or invalid.
	ErrPrefix = errors.New("invalid prefix")
	// ErrFamily: the local and remote prefixes are of different address
	// families.
	ErrFamily = errors.New("local and remote prefixes of different families")
	// ErrPorts: a port range with a protocol that has no ports (only TCP,
	// UDP and SCTP have them; ICMP and ICMPv6 have a type and code of at
	// most 255), or a range whose low end is above its high end.
	ErrPorts = errors.New("invalid port range")
	// ErrThresholds: a hash threshold longer than its family's addresses.
	ErrThresholds = errors.New("invalid hash thresholds")
	// ErrNotFound: no policy has this ID, or it was deleted already.
	ErrNotFound = errors.New("no such policy")
)
