package main

// The reduced `os` library of Argo CD's Lua sandbox: os.time and os.date, nothing else (no
// os.clock, os.getenv, os.exit, os.execute, os.remove...). Written from a reading of the behaviour
// of Argo CD v3.5.1's util/lua/oslib_safe.go, quirks included, because a script that relies on
// them behaves the same here as in Argo CD:
//
//   - os.time{...} takes sec, min, hour (default 12), day, month and year (default -1 each) from
//     number fields only, truncated to integers, in local time; isdst is ignored.
//   - os.date(fmt, t): a leading "!" means UTC, but only for the current time: with a second
//     argument the time is local. "*t" gives a table with yday 0 and isdst false.
//   - The conversions and their Go layouts are gopher-lua's: %a prints the literal "mon", %c is
//     "02 Jan 06 15:04 MST", %x is "15/04/05" (a time, not a date); %j, %U, %e... are not
//     supported and print as written.
//
// The process's local time zone is forced to UTC (main.go), as in Argo CD's container images.

import (
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var reducedOS = map[string]lua.LGFunction{
	"time": osTime,
	"date": osDate,
}

// openReducedOS installs the library as the global `os` (and in package.loaded). Over a full os
// (useOpenLibs) it replaces only time and date.
func openReducedOS(L *lua.LState) int {
	L.Push(L.RegisterModule(lua.OsLibName, reducedOS))
	return 1
}

// requireReducedOS is the package.preload loader: require("os") gives a fresh reduced table.
func requireReducedOS(L *lua.LState) int {
	t := L.NewTable()
	L.SetFuncs(t, reducedOS)
	L.Push(t)
	return 1
}

func osTime(L *lua.LState) int {
	if L.GetTop() == 0 {
		L.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t := L.CheckTable(1)
	field := func(name string, def int) int {
		if n, ok := t.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	at := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	L.Push(lua.LNumber(at.Unix()))
	return 1
}

func osDate(L *lua.LState) int {
	now := time.Now()
	format := "%c"
	if L.GetTop() >= 1 {
		format = L.CheckString(1)
		if strings.HasPrefix(format, "!") {
			now = now.UTC()
			format = strings.TrimLeft(format, "!")
		}
		if L.GetTop() >= 2 {
			now = time.Unix(L.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			t := L.NewTable()
			for k, v := range map[string]int{
				"year": now.Year(), "month": int(now.Month()), "day": now.Day(), "hour": now.Hour(),
				"min": now.Minute(), "sec": now.Second(), "wday": int(now.Weekday()) + 1, "yday": 0,
			} {
				t.RawSetString(k, lua.LNumber(v))
			}
			t.RawSetString("isdst", lua.LFalse)
			L.Push(t)
			return 1
		}
	}
	L.Push(lua.LString(strftime(now, format)))
	return 1
}

// strftime expands the %-conversions of format. "%%" is a percent sign; a "%" at the very end is
// kept; an unsupported conversion is kept as written.
func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			b.WriteByte(c)
			continue
		}
		i++
		if layout, ok := dateLayout(format[i]); ok {
			b.WriteString(t.Format(layout))
			continue
		}
		switch format[i] {
		case '%':
			b.WriteByte('%')
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

// dateLayout is the Go time layout gopher-lua uses for a conversion character.
func dateLayout(c byte) (string, bool) {
	switch c {
	case 'a':
		return "mon", true // sic: not a Go layout element, so the text "mon"
	case 'A':
		return "Monday", true
	case 'b':
		return "Jan", true
	case 'B':
		return "January", true
	case 'c':
		return "02 Jan 06 15:04 MST", true
	case 'd':
		return "02", true
	case 'F':
		return "2006-01-02", true
	case 'H':
		return "15", true
	case 'I':
		return "03", true
	case 'm':
		return "01", true
	case 'M':
		return "04", true
	case 'p':
		return "PM", true
	case 'P':
		return "pm", true
	case 'S':
		return "05", true
	case 'x':
		return "15/04/05", true // sic
	case 'X':
		return "15:04:05", true
	case 'y':
		return "06", true
	case 'Y':
		return "2006", true
	case 'z':
		return "-0700", true
	case 'Z':
		return "MST", true
	}
	return "", false
}
