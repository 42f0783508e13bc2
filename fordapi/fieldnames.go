package fordapi

import (
	"strings"
	"sync"
)

// Field names made from Ford's words (doors, windows, wheels, indicators)
// are made once and shared: every car and every update names the same
// door_driver, and a fleet keeps each car's names for as long as it runs.
// The table stops growing at maxFieldNames (names come from Ford's data).
var fieldNames struct {
	sync.RWMutex
	m map[string]string
}

const maxFieldNames = 4096

// fieldName returns the field name for kind and Ford's words a and b,
// calling build only the first time.
func fieldName(kind, a, b string, build func() string) string {
	var buf [128]byte
	key := append(append(append(append(append(buf[:0], kind...), 0), a...), 0), b...)
	fieldNames.RLock()
	name, ok := fieldNames.m[string(key)]
	fieldNames.RUnlock()
	if ok {
		return name
	}
	name = build()
	fieldNames.Lock()
	if fieldNames.m == nil {
		fieldNames.m = map[string]string{}
	}
	if len(fieldNames.m) < maxFieldNames {
		fieldNames.m[string(key)] = name
	}
	fieldNames.Unlock()
	return name
}

// partField is the field of a door or window ("door_driver"), or "" when
// the entry names no part.
func partField(e map[string]any, kind, key string) string {
	part, _ := e[key].(string)
	side, _ := e["vehicleSide"].(string)
	return fieldName(kind, part, side, func() string {
		name := partName(e, key)
		if name == "" {
			return ""
		}
		return kind + "_" + name
	})
}

// partName names a door or window from Ford's position fields.
func partName(e map[string]any, key string) string {
	part, _ := e[key].(string)
	side, _ := e["vehicleSide"].(string)
	part, side = strings.ToUpper(part), strings.ToUpper(side)
	switch part {
	case "UNSPECIFIED_FRONT", "FRONT":
		if side == "DRIVER" || side == "PASSENGER" {
			return strings.ToLower(side)
		}
		return "front"
	case "UNSPECIFIED_REAR", "REAR":
		if side == "DRIVER" || side == "PASSENGER" {
			return "rear_" + strings.ToLower(side)
		}
		return "rear"
	case "HOOD_DOOR":
		return "hood"
	case "":
		return ""
	}
	return sanitizeName(part)
}

// sanitizeName makes a topic-safe lower-case name.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return strings.Trim(b.String(), "_")
}
