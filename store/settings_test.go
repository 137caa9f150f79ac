package store

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/openvpc/openvpc/model"
)

// TestSettings: the deployment's settings are one key, written when set,
// validated with the rest (errors on settings encaps[i]), deleted when
// emptied; hosts' tunnel kinds and underlay MTU round-trip.
func TestSettings(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 30*time.Second)

	if _, err := s.Update(ctx, replaceWith(basePolicy())); err != nil {
		t.Fatal(err)
	}
	key := s.key(KindSettings, SettingsName)
	if key != DefaultPrefix+"settings/deployment" {
		t.Fatalf("settings key %q", key)
	}
	stored := func() string {
		t.Helper()
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	if got := stored(); got != `{"encaps":["geneve","vxlan"]}` {
		t.Fatalf("stored settings %q", got)
	}
	p, _ := mustPolicy(t, s)
	if p.Settings == nil || !slices.Equal(p.Settings.Encaps, []string{"geneve", "vxlan"}) {
		t.Fatalf("settings read back: %+v", p.Settings)
	}
	var hv2 model.Host
	for _, h := range p.Hosts {
		if h.Name == "hv2" {
			hv2 = h
		}
	}
	if !slices.Equal(hv2.Encaps, []string{"geneve", "vxlan"}) || hv2.UnderlayMTU != 9000 {
		t.Fatalf("host hv2 read back: %+v", hv2)
	}

	// Invalid kinds: the validation error names settings encaps[i], and
	// nothing changes.
	_, rev := mustPolicy(t, s)
	_, err := s.Update(ctx, func(p *model.Policy) error {
		p.Settings = &model.Settings{Encaps: []string{"geneve", "ipsec", "geneve"}}
		return nil
	})
	if !fieldErr(KindSettings, "", "encaps[1]")(err) || !fieldErr(KindSettings, "", "encaps[2]")(err) {
		t.Fatalf("invalid settings: %v", err)
	}
	if _, r := mustPolicy(t, s); r != rev {
		t.Fatalf("rejected update committed (revision %d -> %d)", rev, r)
	}

	// A host cannot give both forms.
	_, err = s.Update(ctx, func(p *model.Policy) error {
		for i := range p.Hosts {
			if p.Hosts[i].Name == "hv1" {
				p.Hosts[i].Encaps = []string{"vxlan"}
			}
		}
		return nil
	})
	if !fieldErr(KindHost, "hv1", "encap")(err) {
		t.Fatalf("encap and encaps: %v", err)
	}

	// Emptied settings are the defaults: the key goes.
	if _, err := s.Update(ctx, func(p *model.Policy) error {
		p.Settings = &model.Settings{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != "" {
		t.Fatalf("empty settings stored as %q", got)
	}
	if p, _ := mustPolicy(t, s); p.Settings != nil {
		t.Fatalf("settings after emptying: %+v", p.Settings)
	}
}

// TestSettingsStrict: a settings key of a newer version (an unknown field)
// or under another name is an error, not silently dropped.
func TestSettingsStrict(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	s := openStore(t, e.Endpoints())
	ctx := testCtx(t, 30*time.Second)
	for _, kv := range [][2]string{
		{s.key(KindSettings, SettingsName), `{"encaps":["vxlan"],"future":1}`},
		{s.key(KindSettings, "other"), `{"encaps":["vxlan"]}`},
	} {
		if _, err := s.cli.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Policy(ctx); err == nil {
			t.Errorf("%s = %s read without error", kv[0], kv[1])
		}
		if _, err := s.cli.Delete(ctx, kv[0]); err != nil {
			t.Fatal(err)
		}
	}
	// Written by another client, seen by a watcher as a policy change.
	if _, err := s.cli.Put(ctx, s.key(KindSettings, SettingsName), `{"encaps":["gre"]}`); err != nil {
		t.Fatal(err)
	}
	p, _, err := s.Policy(ctx)
	if err != nil || !reflect.DeepEqual(p.Settings, &model.Settings{Encaps: []string{"gre"}}) {
		t.Fatalf("settings %+v, %v", p.Settings, err)
	}
	if !s.isPolicyKey(s.key(KindSettings, SettingsName)) {
		t.Error("settings key is not a policy key")
	}
}
