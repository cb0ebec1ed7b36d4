module github.com/pcheck/pcheck

go 1.26.0

require (
	github.com/alecthomas/participle/v2 v2.1.4
	github.com/fsnotify/fsnotify v1.10.1
	github.com/hashicorp/go-syslog v1.0.1
	golang.org/x/sys v0.50.0
)
