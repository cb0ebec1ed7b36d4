// Command demoweb is the tiny web server of pcheck's demo (make run): it
// answers HTTP on 127.0.0.1:8080 and writes its pid file, so pcheck can
// watch it, and restart it when it is killed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	pidFile := flag.String("pidfile", "", "file to write the pid to")
	flag.Parse()
	if err := run(*addr, *pidFile); err != nil {
		log.Fatalf("demoweb: %v", err)
	}
}

func run(addr, pidFile string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
		defer os.Remove(pidFile)
	}
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from demoweb, pid %d, up %v\n", os.Getpid(), time.Since(started).Round(time.Second))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("demoweb: pid %d serving http://%s/", os.Getpid(), ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
