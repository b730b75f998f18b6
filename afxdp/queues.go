package afxdp

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolChannels is the kernel's struct ethtool_channels.
type ethtoolChannels struct {
	cmd           uint32
	maxRx         uint32
	maxTx         uint32
	maxOther      uint32
	maxCombined   uint32
	rxCount       uint32
	txCount       uint32
	otherCount    uint32
	combinedCount uint32
}

// ifreqData is struct ifreq with its union used as a data pointer.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// QueueCount returns how many RX queues of device ifname can carry
// traffic, which is how many sockets the data plane needs on it: the
// combined plus RX-only channels that ethtool reports (ETHTOOL_GCHANNELS),
// or, for drivers without that call, the rx-N entries in sysfs. It looks
// in the network namespace of the calling thread (sysfs: of the mount).
func QueueCount(ifname string) (int, error) {
	n, err := ethtoolQueues(ifname)
	if err == nil && n > 0 {
		return n, nil
	}
	if n, serr := sysfsQueues(ifname); serr == nil && n > 0 {
		return n, nil
	} else if err == nil {
		err = serr
	}
	return 0, fmt.Errorf("queue count of %s: %w", ifname, err)
}

func ethtoolQueues(ifname string) (int, error) {
	if len(ifname) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name %q too long: %w", ifname, ErrConfig)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	ch := ethtoolChannels{cmd: unix.ETHTOOL_GCHANNELS}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&ch)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return 0, fmt.Errorf("ETHTOOL_GCHANNELS %s: %w", ifname, errno)
	}
	return int(ch.combinedCount + ch.rxCount), nil
}

func sysfsQueues(ifname string) (int, error) {
	ents, err := os.ReadDir("/sys/class/net/" + ifname + "/queues")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "rx-") {
			n++
		}
	}
	return n, nil
}
