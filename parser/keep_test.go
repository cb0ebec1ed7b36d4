package parser

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"unsafe"
)

// TestFileKeepsNoInput checks that no string of a loaded File is a slice
// of the pfile's text: one would keep all of the text alive for as long
// as the File, in a pcheck that runs for months.
func TestFileKeepsNoInput(t *testing.T) {
	files, _ := filepath.Glob("../testdata/valid/*.pfile")
	if len(files) == 0 {
		t.Fatal("no valid pfiles in testdata")
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		input := text(data)
		f, diags := load(path, input)
		if f == nil {
			t.Fatalf("%s: %v", path, diags.Err())
		}
		start := uintptr(unsafe.Pointer(unsafe.StringData(input)))
		end := start + uintptr(len(input))
		walkStrings(reflect.ValueOf(f), "File", func(where, s string) {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); s != "" && p >= start && p < end {
				t.Errorf("%s: %s = %q is a slice of the pfile's text", path, where, s)
			}
		})
	}
}

// walkStrings calls fn with every string reachable from v and where it is.
func walkStrings(v reflect.Value, where string, fn func(where, s string)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), where, fn)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			walkStrings(v.Field(i), where+"."+v.Type().Field(i).Name, fn)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkStrings(v.Index(i), where+"["+strconv.Itoa(i)+"]", fn)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			walkStrings(it.Key(), where+"{key}", fn)
			walkStrings(it.Value(), where+"{value}", fn)
		}
	case reflect.String:
		fn(where, v.String())
	}
}
