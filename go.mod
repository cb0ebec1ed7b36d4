module github.com/pcheck/pcheck

go 1.26.0

require (
	github.com/alecthomas/participle/v2 v2.1.4 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/hashicorp/go-syslog v1.0.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
