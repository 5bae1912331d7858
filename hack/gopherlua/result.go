package main

// Reading a script's result back, as Argo CD v3.5.1 does (util/lua/lua.go: ExecuteHealthLua,
// ExecuteResourceAction, ExecuteResourceActionDiscovery; server/application/application.go:
// RunResourceActionV2 and patchResource). Every table goes through layeh.com/gopher-json, at the
// version Argo CD pins: an empty table encodes as [], a table whose first key is a number must be
// a sequence from 1 and becomes an array, one whose first key is a string must have only string
// keys and becomes an object; anything else is an error.

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

func notATable(v lua.LValue) error {
	return fmt.Errorf("expect table output from Lua script, not %s", v.Type().String())
}

// ----------------------------------------------------------------------------------- health

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

var healthStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// healthResult is hs.status and hs.message. Nil, an empty table or fields of the wrong JSON type
// give an empty status (Argo CD then has no health for the resource); a status that is not one of
// Argo CD's becomes Unknown with Argo CD's own message.
func healthResult(ret lua.LValue) (health, error) {
	if ret == lua.LNil {
		return health{}, nil
	}
	if ret.Type() != lua.LTTable {
		return health{}, notATable(ret)
	}
	data, err := luajson.Encode(ret)
	if err != nil {
		return health{}, err
	}
	var h health
	if err := json.Unmarshal(data, &h); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return health{}, nil
		}
		return health{}, err
	}
	if !healthStatuses[h.Status] {
		return health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return h, nil
}

// ----------------------------------------------------------------------------------- actions

type impacted struct {
	Operation  string         `json:"operation"`
	Resource   map[string]any `json:"resource"`
	MergePatch any            `json:"mergePatch,omitempty"` // for "patch" only; {} when nothing changes
}

// actionResult is what Argo CD does with an action's return value: an object is the source
// resource to patch (the style of every action before Argo CD 2.8); an array lists impacted
// resources, each {"resource": ..., "operation": "create"|"patch"}. Every resource must have a
// kind (Argo CD decodes it as an unstructured object). Resources to patch are cleaned against the
// live object, and their merge patch is computed as Argo CD's API server does before it sends it.
func actionResult(ret lua.LValue, live map[string]any) ([]impacted, error) {
	if ret.Type() != lua.LTTable {
		return nil, notATable(ret)
	}
	data, err := luajson.Encode(ret)
	if err != nil {
		return nil, err
	}
	if len(data) < 2 {
		return nil, errors.New("Lua output was not a valid json object or array")
	}
	var out []impacted
	if data[0] == '[' && data[len(data)-1] == ']' {
		var list []struct {
			Operation json.RawMessage `json:"operation"`
			Resource  json.RawMessage `json:"resource"`
		}
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, err
		}
		for _, item := range list {
			var op string
			if err := json.Unmarshal(item.Operation, &op); err != nil || (op != "create" && op != "patch") {
				return nil, fmt.Errorf("unsupported operation: %s", item.Operation)
			}
			res, err := resourceOf(item.Resource)
			if err != nil {
				return nil, err
			}
			out = append(out, impacted{Operation: op, Resource: res})
		}
	} else {
		res, err := resourceOf(data)
		if err != nil {
			return nil, err
		}
		out = append(out, impacted{Operation: "patch", Resource: res})
	}
	for i := range out {
		if out[i].Operation != "patch" {
			continue
		}
		out[i].Resource = unmangle(out[i].Resource, live)
		patch, err := mergePatch(live, out[i].Resource)
		if err != nil {
			return nil, err
		}
		out[i].MergePatch = patch
	}
	if out == nil {
		out = []impacted{}
	}
	return out, nil
}

func resourceOf(data []byte) (map[string]any, error) {
	v, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	res, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a resource must be a JSON object, not %s", data)
	}
	if kind, _ := res["kind"].(string); kind == "" {
		return nil, fmt.Errorf("Object 'Kind' is missing in '%s'", data)
	}
	return res, nil
}

// unmangle undoes what the Lua round trip does to empty objects: an empty table encodes as [], so
// where the live object has an object and the result has an empty array, the result gets {} back.
// Objects are followed key by key and arrays element by element (as far as both are long); an
// array element that became [] where the live one was {} stays [], as in Argo CD.
func unmangle(result, live map[string]any) map[string]any {
	for key, before := range live {
		after, ok := result[key]
		if !ok {
			continue
		}
		switch a := after.(type) {
		case map[string]any:
			if b, ok := before.(map[string]any); ok {
				result[key] = unmangle(a, b)
			}
		case []any:
			switch b := before.(type) {
			case map[string]any:
				if len(a) == 0 {
					result[key] = map[string]any{}
				}
			case []any:
				result[key] = unmangleArray(a, b)
			}
		}
	}
	return result
}

func unmangleArray(result, live []any) []any {
	for i := 0; i < len(result) && i < len(live); i++ {
		switch a := result[i].(type) {
		case map[string]any:
			if b, ok := live[i].(map[string]any); ok {
				result[i] = unmangle(a, b)
			}
		case []any:
			if b, ok := live[i].([]any); ok {
				result[i] = unmangleArray(a, b)
			}
		}
	}
	return result
}

// mergePatch is the JSON merge patch (RFC 7386) from the live object to the result, compared as
// JSON values (every number a float64): a changed or added key carries its new value, a removed
// one null, objects are compared key by key and everything else as a whole. An empty patch means
// Argo CD sends nothing. A patch with a "status" key is sent to the status subresource first.
func mergePatch(live, result map[string]any) (map[string]any, error) {
	a, err := asJSON(live)
	if err != nil {
		return nil, err
	}
	b, err := asJSON(result)
	if err != nil {
		return nil, err
	}
	return diff(a, b), nil
}

func asJSON(v map[string]any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(data, &out)
}

func diff(a, b map[string]any) map[string]any {
	patch := map[string]any{}
	for key, after := range b {
		before, ok := a[key]
		if !ok {
			patch[key] = after
			continue
		}
		am, aIsMap := before.(map[string]any)
		bm, bIsMap := after.(map[string]any)
		switch {
		case aIsMap && bIsMap:
			if d := diff(am, bm); len(d) > 0 {
				patch[key] = d
			}
		case !reflect.DeepEqual(before, after):
			patch[key] = after
		}
	}
	for key := range a {
		if _, ok := b[key]; !ok {
			patch[key] = nil
		}
	}
	return patch
}

// --------------------------------------------------------------------------------- discovery

type actionParam struct {
	Name string `json:"name,omitempty"`
}

type action struct {
	Name        string        `json:"name"`
	Disabled    bool          `json:"disabled"`
	DisplayName string        `json:"displayName,omitempty"`
	IconClass   string        `json:"iconClass,omitempty"`
	Params      []actionParam `json:"params,omitempty"`
}

// discoveryResult is the actions table: each key an action, enabled unless its value has
// disabled = true. A value may be an empty table, or a table with disabled, displayName,
// iconClass and params (a value of another type is an error); a name inside it replaces the key.
func discoveryResult(ret lua.LValue) ([]action, error) {
	if ret.Type() != lua.LTTable {
		return nil, notATable(ret)
	}
	data, err := luajson.Encode(ret)
	if err != nil {
		return nil, fmt.Errorf("error in converting to lua table: %w", err)
	}
	actions := []action{}
	if string(data) == "[]" {
		return actions, nil
	}
	var table map[string]any
	if err := json.Unmarshal(data, &table); err != nil {
		return nil, fmt.Errorf("error unmarshaling action table: %w", err)
	}
	for name, value := range table {
		a := action{Name: name}
		if fields, ok := value.(map[string]any); ok {
			if d, ok := fields["disabled"].(bool); ok {
				a.Disabled = d
			}
		}
		if _, isArray := value.([]any); !isArray { // any array, not only an empty one, is an action with no fields
			raw, err := json.Marshal(value)
			if err != nil {
				return nil, fmt.Errorf("error marshaling resource action: %w", err)
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("error unmarshaling resource action: %w", err)
			}
		}
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}
