// Package vswitchd holds libovsdb models for the part of the Open_vSwitch
// database OpenVPC uses: Open_vSwitch, Bridge, Port, Interface, Controller and
// Flow_Table, each trimmed to the columns OpenVPC reads or writes.
//
// The models are generated; do not edit them by hand. To regenerate (after
// changing the table/column list in ../internal/trimschema), run
//
//	go generate ./ovsdb/vswitchd
//
// which first writes vswitch.trimmed.ovsschema from the installed
// /usr/share/openvswitch/vswitch.ovsschema and then runs libovsdb's modelgen
// on it. Keep the column list to columns that older Open vSwitch releases
// have: libovsdb refuses to connect to a server whose schema lacks a column
// present in the models.
package vswitchd

//go:generate go run ../internal/trimschema -in /usr/share/openvswitch/vswitch.ovsschema -out vswitch.trimmed.ovsschema
//go:generate go tool modelgen -p vswitchd -o . vswitch.trimmed.ovsschema
