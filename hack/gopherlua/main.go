// Command gopherlua runs an Argo CD resource customization written in Lua — a health check, a
// resource action or an action discovery script — in the environment Argo CD gives it: the same
// gopher-lua version, the same libraries (and the same ones left out), the live object as the
// global `obj` converted from JSON the same way, and the result read back the same way. slogate's
// unit tests (tests/unit/test_argocd_health.py, test_argocd_actions.py) run deploy/gitops/ with it
// beside a stock Lua 5.4, so a script that only works in Lua 5.4 fails a test.
//
// It models Argo CD v3.5.1 (util/lua/lua.go, oslib_safe.go; the sandbox is unchanged on master as
// of 2026-08-22) and is written from a reading of that code; it contains none of it.
//
//	gopherlua -mode health    -script health.lua    -obj obj.json [-open-libs]
//	gopherlua -mode action    -script action.lua    -obj obj.json [-params params.json]
//	gopherlua -mode discovery -script discovery.lua -obj obj.json
//	gopherlua -version
//
// -obj - reads the object from stdin. Output, one JSON document on stdout:
//
//	health     {"status": "...", "message": "..."}, as Argo CD reads hs.status and hs.message (an
//	           unknown status becomes Unknown with Argo CD's message)
//	action     [{"operation": "patch"|"create", "resource": {...}, "mergePatch": {...}}], the
//	           returned object (or list of impacted resources) after Argo CD's clean-up, and for
//	           "patch" the JSON merge patch (RFC 7386) Argo CD would send: the difference between
//	           the live object and the returned one
//	discovery  [{"name": "...", "disabled": bool, "displayName": "...", "iconClass": "...",
//	           "params": [...]}], sorted by name
//
// A Lua error (syntax or runtime, including the one-second deadline) or a result Argo CD rejects
// exits 1 with the message on stderr; bad usage exits 2.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// ArgoCDVersion is the Argo CD release whose Lua environment this program reproduces.
const ArgoCDVersion = "v3.5.1"

func main() {
	os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func cli(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gopherlua", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "", "health, action or discovery")
	scriptPath := fs.String("script", "", "the Lua script")
	objPath := fs.String("obj", "", "the live object as JSON (- for stdin)")
	paramsPath := fs.String("params", "", "action parameters: a JSON object of strings (the global actionParams)")
	openLibs := fs.Bool("open-libs", false, "health only: resource.customizations.useOpenLibs is true (all standard libraries)")
	version := fs.Bool("version", false, "print the versions this binary was built with, as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		return printJSON(stdout, stderr, versions())
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "gopherlua: %s\n", msg)
		fs.Usage()
		return 2
	}
	if *mode != "health" && *mode != "action" && *mode != "discovery" {
		return usage("-mode must be health, action or discovery")
	}
	if *scriptPath == "" || *objPath == "" {
		return usage("-script and -obj are required")
	}
	if *openLibs && *mode != "health" {
		return usage("-open-libs applies to health checks only: Argo CD runs actions and discovery without the standard libraries")
	}
	script, err := os.ReadFile(*scriptPath)
	if err != nil {
		return usage(err.Error())
	}
	var raw []byte
	if *objPath == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(*objPath)
	}
	if err != nil {
		return usage(err.Error())
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return usage("-obj: " + err.Error())
	}
	live, ok := obj.(map[string]any)
	if !ok {
		return usage("-obj must be a JSON object")
	}
	params := map[string]string{}
	if *paramsPath != "" {
		data, err := os.ReadFile(*paramsPath)
		if err != nil {
			return usage(err.Error())
		}
		if err := json.Unmarshal(data, &params); err != nil {
			return usage("-params must be a JSON object of strings: " + err.Error())
		}
	}

	// Argo CD's images carry no time zone data: local time is UTC there.
	time.Local = time.UTC
	sb := newSandbox(*openLibs)
	defer sb.Close()
	ret, err := sb.run(string(script), live, params)
	if err != nil {
		fmt.Fprintf(stderr, "gopherlua: %s\n", err)
		return 1
	}
	var out any
	switch *mode {
	case "health":
		out, err = healthResult(ret)
	case "action":
		// `live` is untouched by the run (obj is a copy in Lua tables): the object as the API
		// server sent it, which the merge patch starts from.
		out, err = actionResult(ret, live)
	case "discovery":
		out, err = discoveryResult(ret)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gopherlua: %s\n", err)
		return 1
	}
	return printJSON(stdout, stderr, out)
}

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false) // messages such as "612ms > 500ms" stay readable
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "gopherlua: %s\n", err)
		return 1
	}
	return 0
}

// versions reports the Go module versions compiled in, from the binary's own build information.
func versions() map[string]string {
	v := map[string]string{"argoCD": ArgoCDVersion, "go": runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			switch dep.Path {
			case "github.com/yuin/gopher-lua":
				v["gopherLua"] = dep.Version
			case "layeh.com/gopher-json":
				v["gopherJSON"] = dep.Version
			}
		}
	}
	return v
}
