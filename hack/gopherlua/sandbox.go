package main

// The Lua state Argo CD gives a customization from argocd-cm, rebuilt from a reading of Argo CD
// v3.5.1's util/lua/lua.go (runLuaWithResourceActionParameters), with gopher-lua at the version
// Argo CD pins in its go.mod:
//
//   - lua.NewState with SkipOpenLibs unless the argocd-cm key
//     resource.customizations.useOpenLibs.<group>_<kind> is true. That key is read for health
//     checks only: actions and discovery scripts always run without the standard libraries.
//   - Then, always: package, base and table, and a reduced `os` that has only os.time and os.date
//     (Argo CD's oslib_safe.go); `require("os")` returns the same reduced library. So without
//     useOpenLibs there is no string, math, io, debug, coroutine or channel library, and no
//     string methods ("x"):format() either (their metatable comes with the string library).
//   - A one-second deadline on the whole run (lua.LState.SetContext).
//   - The global `actionParams` (a table of string values; empty unless parameters are given) and
//     the global `obj`, the live object converted from JSON as below.
//   - The script runs as one chunk (DoString); its first return value is the result.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// deadline is how long Argo CD lets a script run.
const deadline = time.Second

// sandbox is one run's Lua state. Close it when done.
type sandbox struct {
	L      *lua.LState
	cancel context.CancelFunc
}

func newSandbox(openLibs bool) *sandbox {
	L := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	// Argo CD opens these whether or not the full set was opened already (a second OpenBase or
	// OpenTable is harmless; the reduced os replaces os.time and os.date of a full os).
	libs := []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openReducedOS},
	}
	for _, lib := range libs {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.PreloadModule(lua.OsLibName, requireReducedOS)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	L.SetContext(ctx)
	return &sandbox{L: L, cancel: cancel}
}

func (s *sandbox) Close() {
	s.cancel()
	s.L.Close()
}

// run sets the globals and runs the script; it returns the value the chunk left on top of the
// stack (nil when it returned nothing). A runtime error loses its stack trace, as in Argo CD,
// where the message goes back to the user.
func (s *sandbox) run(script string, obj any, params map[string]string) (lua.LValue, error) {
	p := s.L.CreateTable(0, len(params))
	for k, v := range params {
		p.RawSetH(lua.LString(k), lua.LString(v))
	}
	s.L.SetGlobal("actionParams", p)
	s.L.SetGlobal("obj", toLua(s.L, obj))
	if err := s.L.DoString(script); err != nil {
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = ""
		}
		return nil, err
	}
	return s.L.Get(-1), nil
}

// decodeObject reads JSON the way client-go's unstructured decoding hands Argo CD a live object:
// integers as int64, other numbers as float64, objects as map[string]any, arrays as []any.
func decodeObject(data []byte) (any, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("more than one JSON value")
	}
	return numbersOf(v)
}

func numbersOf(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	case []any:
		for i := range x {
			n, err := numbersOf(x[i])
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	case map[string]any:
		for k := range x {
			n, err := numbersOf(x[k])
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
		return x, nil
	}
	return v, nil
}

// toLua converts a decoded object as Argo CD does before it sets `obj`: every number becomes a Lua
// number (float64: gopher-lua has no integers), null becomes nil (so an object key with a null
// value is absent, and an array's null element is dropped: LTable.Append ignores nil), arrays
// become sequences from 1 and objects tables keyed by string. Anything else becomes nil.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case json.Number:
		return lua.LString(x) // never produced by decodeObject; Argo CD maps it to a string
	case int:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetH(lua.LString(k), toLua(L, e))
		}
		return t
	}
	return lua.LNil
}
