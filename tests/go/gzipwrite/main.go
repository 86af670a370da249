// gzipwrite: the independent writer for tests/regzip_go.rs. It compresses a file with
// Go's own compress/gzip, fed the way docker feeds it (io.Copy: 32 KiB writes), so the
// Rust reimplementation can be compared byte for byte.
//
//	gzipwrite LEVEL IN OUT            default header (no name, no mtime)
//	gzipwrite LEVEL IN OUT NAME MTIME header with Name and ModTime (unix seconds)
//
// IN or OUT "-" is stdin or stdout (for streams too big to keep as files). With
// GZIPWRITE_FLUSH_EVERY=N in the environment it writes N bytes at a time and calls
// Flush after each write instead.
package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// onlyReader hides any WriterTo/ReaderFrom so io.CopyBuffer uses its 32 KiB buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gzipwrite:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 && len(args) != 5 {
		return fmt.Errorf("usage: gzipwrite LEVEL IN OUT [NAME MTIME]")
	}
	level, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	in, out := os.Stdin, os.Stdout
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
	zw, err := gzip.NewWriterLevel(bw, level)
	if err != nil {
		return err
	}
	if len(args) == 5 {
		mtime, err := strconv.ParseInt(args[4], 10, 64)
		if err != nil {
			return err
		}
		zw.Name = args[3]
		zw.ModTime = time.Unix(mtime, 0)
	}
	if every := os.Getenv("GZIPWRITE_FLUSH_EVERY"); every != "" {
		n, err := strconv.Atoi(every)
		if err != nil {
			return err
		}
		if err := writeFlushing(zw, in, n); err != nil {
			return err
		}
	} else if _, err := io.CopyBuffer(zw, onlyReader{in}, make([]byte, 32*1024)); err != nil {
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

// writeFlushing writes r to zw in pieces of n bytes, each followed by Flush.
func writeFlushing(zw *gzip.Writer, r io.Reader, n int) error {
	buf := make([]byte, n)
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if _, err := zw.Write(buf[:k]); err != nil {
				return err
			}
			if err := zw.Flush(); err != nil {
				return err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
