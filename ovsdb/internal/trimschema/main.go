// Command trimschema writes a copy of an OVSDB schema that keeps only the
// given tables and columns. OpenVPC generates its Open_vSwitch models from the
// trimmed copy: libovsdb refuses to connect when a model has a column the
// server's schema lacks, so the fewer (and older) columns the models carry,
// the older the Open vSwitch they can manage.
//
// Usage: trimschema -in vswitch.ovsschema -out trimmed.ovsschema
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
)

// keep lists, per table, the columns OpenVPC uses. Every one of them exists
// in Open vSwitch 2.5 and later (schema 7.12); keep it that way.
var keep = map[string][]string{
	"Open_vSwitch": {"bridges", "cur_cfg", "next_cfg", "db_version", "ovs_version",
		"datapath_types", "iface_types", "external_ids", "other_config"},
	"Bridge": {"name", "datapath_type", "datapath_id", "fail_mode", "protocols", "controller",
		"ports", "flow_tables", "external_ids", "other_config"},
	"Port":       {"name", "interfaces", "external_ids", "other_config"},
	"Interface":  {"name", "type", "options", "ofport", "ofport_request", "error", "external_ids", "other_config"},
	"Controller": {"target", "connection_mode", "max_backoff", "inactivity_probe", "is_connected", "role", "status", "external_ids", "other_config"},
	"Flow_Table": {"name", "flow_limit", "overflow_policy"},
}

func main() {
	in := flag.String("in", "/usr/share/openvswitch/vswitch.ovsschema", "full schema")
	out := flag.String("out", "vswitch.trimmed.ovsschema", "trimmed schema to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		log.Fatalf("trimschema: %v", err)
	}
}

func run(in, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		return fmt.Errorf("parse %s: %w", in, err)
	}
	tables, ok := schema["tables"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: no tables", in)
	}
	for name := range tables {
		if _, ok := keep[name]; !ok {
			delete(tables, name)
		}
	}
	for name, cols := range keep {
		t, ok := tables[name].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: table %s missing", in, name)
		}
		columns := t["columns"].(map[string]any)
		want := map[string]bool{}
		for _, c := range cols {
			if _, ok := columns[c]; !ok {
				return fmt.Errorf("%s: column %s.%s missing", in, name, c)
			}
			want[c] = true
		}
		for c, def := range columns {
			if !want[c] {
				delete(columns, c)
				continue
			}
			for _, table := range refTables(def) {
				if _, ok := keep[table]; !ok {
					return fmt.Errorf("column %s.%s refers to table %s, which is not kept", name, c, table)
				}
			}
		}
		// Drop indexes over removed columns.
		if idx, ok := t["indexes"].([]any); ok {
			var kept []any
			for _, ix := range idx {
				all := true
				for _, c := range ix.([]any) {
					all = all && want[c.(string)]
				}
				if all {
					kept = append(kept, ix)
				}
			}
			if len(kept) == 0 {
				delete(t, "indexes")
			} else {
				t["indexes"] = kept
			}
		}
	}
	enc, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(enc, '\n'), 0o644)
}

// refTables returns the tables a column definition refers to.
func refTables(def any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if k == "refTable" {
					if s, ok := v[k].(string); ok {
						out = append(out, s)
					}
					continue
				}
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(def)
	return out
}
