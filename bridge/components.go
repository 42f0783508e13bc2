package bridge

import (
	"maps"
	"slices"
	"strings"
	"unique"
)

// components is a device config's components, key and platform, in one
// string ("key\x00platform\x00…", sorted by key): what the bridge remembers
// of each device on the broker to find what left it. A map per device
// would hold a fleet's thousand of them at several kilobytes each. The
// string is interned (unique): cars of one model have the same components,
// and a fleet of them holds one copy (1.7 MB less for the load harness's
// thousand cars).
type components struct{ h unique.Handle[string] }

func componentsOf(m map[string]string) components {
	var b strings.Builder
	n := 0
	for k, p := range m {
		n += len(k) + len(p) + 2
	}
	b.Grow(n) // one allocation of the exact size
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	if n == 0 {
		return components{}
	}
	return components{unique.Make(b.String())}
}

// each calls f with every key and platform.
func (c components) each(f func(key, platform string)) {
	if c == (components{}) {
		return
	}
	s := c.h.Value()
	for s != "" {
		key, rest, _ := strings.Cut(s, "\x00")
		platform, rest2, _ := strings.Cut(rest, "\x00")
		f(key, platform)
		s = rest2
	}
}
