// pgzipwrite: the independent writer for tests/regzip_pgzip.rs. It compresses a file
// with klauspost's pgzip over klauspost's flate (Debian's golang-github-klauspost-*-dev
// sources, built in GOPATH mode), the way containers/image's gzip compressor does:
// pgzip.NewWriterLevel (or pgzip.NewWriter for "default"), io.Copy, Close.
//
//	pgzipwrite LEVEL IN OUT [BLOCKSIZE]   LEVEL is -2..9 or "default"
//
// BLOCKSIZE sets pgzip's block size (SetConcurrency; containers/image keeps the 1 MiB
// default).
//
// IN or OUT "-" is stdin or stdout.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/klauspost/pgzip"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pgzipwrite:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 && len(args) != 4 {
		return fmt.Errorf("usage: pgzipwrite LEVEL IN OUT [BLOCKSIZE]")
	}
	in, out := os.Stdin, os.Stdout
	var err error
	if args[1] != "-" {
		if in, err = os.Open(args[1]); err != nil {
			return err
		}
		defer in.Close()
	}
	if args[2] != "-" {
		if out, err = os.Create(args[2]); err != nil {
			return err
		}
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	var zw *pgzip.Writer
	if args[0] == "default" {
		zw = pgzip.NewWriter(bw)
	} else {
		level, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		if zw, err = pgzip.NewWriterLevel(bw, level); err != nil {
			return err
		}
	}
	if len(args) == 4 {
		size, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		if err := zw.SetConcurrency(size, 4); err != nil {
			return err
		}
	}
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return out.Close()
}
