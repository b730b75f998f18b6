package control

import "fmt"

// Deleting SAs ourselves (RFC 7296 section 1.4.1): an INFORMATIONAL request
// with a Delete payload. A child SA goes when the peer confirms with its own
// half; an IKE SA goes with its children whether or not the peer answers.

// DeleteChild deletes the child SA whose inbound or outbound SPI is spi.
func (d *Daemon) DeleteChild(spi uint32) error {
	sa, c := d.findChild(spi)
	if sa == nil {
		return fmt.Errorf("%w: %08x", ErrNoChild, spi)
	}
	defer sa.mu.Unlock()
	sa.enqueue(func() { sa.startDeleteChild(c) })
	return nil
}

// Delete deletes the IKE SA and its child SAs.
func (sa *IKESA) Delete() {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	sa.enqueue(sa.startDeleteIKE)
}

func (sa *IKESA) startDeleteChild(c *child) {
	if sa.childBySPI(c.inSPI) != c {
		return
	}
	id := sa.nextRequestID()
	b, err := (&Message{Header: sa.header(INFORMATIONAL, false, id)}).EncodeEncrypted(
		[]Payload{&Delete{Protocol: ProtoESP, SPIs: []uint32{c.inSPI}}}, sa.out)
	if err != nil {
		sa.fail(err)
		return
	}
	sa.sendRequest(b, id, INFORMATIONAL, func(raw []byte) {
		if _, ok := sa.open(raw); !ok {
			return
		}
		sa.stopRequest()
		if sa.childBySPI(c.inSPI) == c {
			sa.deleteChild(c)
		}
	})
}

func (sa *IKESA) startDeleteIKE() {
	id := sa.nextRequestID()
	b, err := (&Message{Header: sa.header(INFORMATIONAL, false, id)}).EncodeEncrypted(
		[]Payload{&Delete{Protocol: ProtoIKE}}, sa.out)
	if err != nil {
		sa.fail(err)
		return
	}
	sa.sendRequest(b, id, INFORMATIONAL, func(raw []byte) {
		if _, ok := sa.open(raw); !ok {
			return
		}
		sa.stopRequest()
		sa.closeIKE()
	})
}

// closeIKE removes the IKE SA and its children, after a delete either way.
func (sa *IKESA) closeIKE() {
	for len(sa.children) > 0 {
		sa.deleteChild(sa.children[0])
	}
	sa.state = stateDeleted
	sa.queue = nil
	sa.d.remove(sa)
	sa.d.log.Info("IKE SA deleted", "peer", sa.cfg.Name, "spi_i", fmt.Sprintf("%016x", sa.spiI))
}

// DeleteIKESAOf deletes the IKE SA that holds the child SA whose inbound
// or outbound SPI is spi, and with it all its child SAs: an idle tunnel
// closes whole.
func (d *Daemon) DeleteIKESAOf(spi uint32) error {
	sa, _ := d.findChild(spi)
	if sa == nil {
		return fmt.Errorf("%w: %08x", ErrNoChild, spi)
	}
	defer sa.mu.Unlock()
	sa.enqueue(sa.startDeleteIKE)
	return nil
}
