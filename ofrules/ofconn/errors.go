package ofconn

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/openvpc/openvpc/ofrules"
)

// OFError is an OpenFlow error message received from a switch.
type OFError struct {
	Type uint16
	Code uint16
	// Experimenter is set for experimenter errors (Type 0xffff).
	Experimenter uint32
	// Data is the start of the offending request (or text for HELLO_FAILED).
	Data []byte
}

func parseOFError(msg []byte) *OFError {
	e := &OFError{}
	if len(msg) < 12 {
		return e
	}
	e.Type, e.Code = binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint16(msg[10:])
	data := msg[12:]
	if e.Type == 0xffff && len(data) >= 4 {
		e.Experimenter = binary.BigEndian.Uint32(data)
		data = data[4:]
	}
	e.Data = append([]byte(nil), data...)
	return e
}

var errTypeNames = map[uint16]string{
	0: "OFPET_HELLO_FAILED", 1: "OFPET_BAD_REQUEST", 2: "OFPET_BAD_ACTION", 3: "OFPET_BAD_INSTRUCTION",
	4: "OFPET_BAD_MATCH", 5: "OFPET_FLOW_MOD_FAILED", 6: "OFPET_GROUP_MOD_FAILED", 7: "OFPET_PORT_MOD_FAILED",
	8: "OFPET_TABLE_MOD_FAILED", 9: "OFPET_QUEUE_OP_FAILED", 10: "OFPET_SWITCH_CONFIG_FAILED",
	11: "OFPET_ROLE_REQUEST_FAILED", 12: "OFPET_METER_MOD_FAILED", 13: "OFPET_TABLE_FEATURES_FAILED",
	14: "OFPET_BAD_PROPERTY", 15: "OFPET_ASYNC_CONFIG_FAILED", 16: "OFPET_FLOW_MONITOR_FAILED",
	17: "OFPET_BUNDLE_FAILED",
}

var errCodeNames = map[uint16][]string{
	0: {"OFPHFC_INCOMPATIBLE", "OFPHFC_EPERM"},
	1: {"OFPBRC_BAD_VERSION", "OFPBRC_BAD_TYPE", "OFPBRC_BAD_MULTIPART", "OFPBRC_BAD_EXPERIMENTER",
		"OFPBRC_BAD_EXP_TYPE", "OFPBRC_EPERM", "OFPBRC_BAD_LEN", "OFPBRC_BUFFER_EMPTY", "OFPBRC_BUFFER_UNKNOWN",
		"OFPBRC_BAD_TABLE_ID", "OFPBRC_IS_SLAVE", "OFPBRC_BAD_PORT", "OFPBRC_BAD_PACKET",
		"OFPBRC_MULTIPART_BUFFER_OVERFLOW", "OFPBRC_MULTIPART_REQUEST_TIMEOUT", "OFPBRC_MULTIPART_REPLY_TIMEOUT"},
	2: {"OFPBAC_BAD_TYPE", "OFPBAC_BAD_LEN", "OFPBAC_BAD_EXPERIMENTER", "OFPBAC_BAD_EXP_TYPE",
		"OFPBAC_BAD_OUT_PORT", "OFPBAC_BAD_ARGUMENT", "OFPBAC_EPERM", "OFPBAC_TOO_MANY", "OFPBAC_BAD_QUEUE",
		"OFPBAC_BAD_OUT_GROUP", "OFPBAC_MATCH_INCONSISTENT", "OFPBAC_UNSUPPORTED_ORDER", "OFPBAC_BAD_TAG",
		"OFPBAC_BAD_SET_TYPE", "OFPBAC_BAD_SET_LEN", "OFPBAC_BAD_SET_ARGUMENT", "OFPBAC_BAD_SET_MASK"},
	3: {"OFPBIC_UNKNOWN_INST", "OFPBIC_UNSUP_INST", "OFPBIC_BAD_TABLE_ID", "OFPBIC_UNSUP_METADATA",
		"OFPBIC_UNSUP_METADATA_MASK", "OFPBIC_BAD_EXPERIMENTER", "OFPBIC_BAD_EXP_TYPE", "OFPBIC_BAD_LEN",
		"OFPBIC_EPERM", "OFPBIC_DUP_INST"},
	4: {"OFPBMC_BAD_TYPE", "OFPBMC_BAD_LEN", "OFPBMC_BAD_TAG", "OFPBMC_BAD_DL_ADDR_MASK",
		"OFPBMC_BAD_NW_ADDR_MASK", "OFPBMC_BAD_WILDCARDS", "OFPBMC_BAD_FIELD", "OFPBMC_BAD_VALUE",
		"OFPBMC_BAD_MASK", "OFPBMC_BAD_PREREQ", "OFPBMC_DUP_FIELD", "OFPBMC_EPERM"},
	5: {"OFPFMFC_UNKNOWN", "OFPFMFC_TABLE_FULL", "OFPFMFC_BAD_TABLE_ID", "OFPFMFC_OVERLAP", "OFPFMFC_EPERM",
		"OFPFMFC_BAD_TIMEOUT", "OFPFMFC_BAD_COMMAND", "OFPFMFC_BAD_FLAGS", "OFPFMFC_CANT_SYNC",
		"OFPFMFC_BAD_PRIORITY", "OFPFMFC_IS_SYNC"},
	17: {"OFPBFC_UNKNOWN", "OFPBFC_EPERM", "OFPBFC_BAD_ID", "OFPBFC_BUNDLE_EXIST", "OFPBFC_BUNDLE_CLOSED",
		"OFPBFC_OUT_OF_BUNDLES", "OFPBFC_BAD_TYPE", "OFPBFC_BAD_FLAGS", "OFPBFC_MSG_BAD_LEN",
		"OFPBFC_MSG_BAD_XID", "OFPBFC_MSG_UNSUP", "OFPBFC_MSG_CONFLICT", "OFPBFC_MSG_TOO_MANY",
		"OFPBFC_MSG_FAILED", "OFPBFC_TIMEOUT", "OFPBFC_BUNDLE_IN_PROGRESS", "OFPBFC_SCHED_NOT_SUPPORTED",
		"OFPBFC_SCHED_FUTURE", "OFPBFC_SCHED_PAST"},
}

// Name is the symbolic name of the error, e.g. "OFPBIC_BAD_TABLE_ID".
func (e *OFError) Name() string {
	if e.Type == 0xffff {
		return fmt.Sprintf("experimenter %#x error %d", e.Experimenter, e.Code)
	}
	if names, ok := errCodeNames[e.Type]; ok && int(e.Code) < len(names) {
		return names[e.Code]
	}
	if t, ok := errTypeNames[e.Type]; ok {
		return fmt.Sprintf("%s code %d", t, e.Code)
	}
	return fmt.Sprintf("error type %d code %d", e.Type, e.Code)
}

func (e *OFError) Error() string {
	s := fmt.Sprintf("%s (type %d, code %d)", e.Name(), e.Type, e.Code)
	if e.Type == 0 && len(e.Data) > 0 { // HELLO_FAILED carries text
		s += ": " + strings.TrimRight(string(e.Data), "\x00\n")
	}
	return s
}

// ModError is the switch's rejection of one flow-mod of a bundle.
type ModError struct {
	Index int // position in the mods passed to Bundle
	Mod   ofrules.FlowMod
	Err   *OFError
}

func (e ModError) Error() string {
	return fmt.Sprintf("flow-mod #%d (%s): %v", e.Index, e.Mod.Describe(), e.Err)
}

// BundleError is returned by Bundle when the switch rejected the bundle;
// nothing of it was applied.
type BundleError struct {
	N      int        // flow-mods in the bundle
	Mods   []ModError // the first rejected flow-mods, in order received
	More   int        // further rejected flow-mods not listed in Mods
	Commit *OFError   // error on the commit itself, if any
	Other  *OFError   // error on open/close/discard, if any
}

func (e *BundleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bundle of %d flow-mods rejected", e.N)
	for i, m := range e.Mods {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(m.Error())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "; and %d more", e.More)
	}
	if e.Commit != nil {
		fmt.Fprintf(&b, "; commit: %v", e.Commit)
	}
	if e.Other != nil {
		fmt.Fprintf(&b, "; %v", e.Other)
	}
	return b.String()
}
