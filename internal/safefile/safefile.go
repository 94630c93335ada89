// Package safefile writes the files mcptap is asked to write (exports,
// profiles) without ever replacing what is not a regular file: a regular file
// (or a new one) is written through a 0600 temporary file in the same
// directory and renamed into place, so a failed write leaves the old file
// whole; a device, pipe or socket (/dev/null, /dev/stdout, a FIFO) is written
// to directly, never replaced; a directory and a symbolic link are refused
// with a message that says what to do, rather than followed or overwritten.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrRefused wraps the refusal of a path that is a directory or a symbolic link.
var ErrRefused = errors.New("refused")

// File is an output being written; Close finishes it (the rename, for a
// regular file) and Abort drops it.
type File struct {
	f      *os.File
	tmp    string // "" when writing to the path directly
	path   string
	closed bool
}

// Create opens path for writing as the package documents.
func Create(path string) (*File, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("write %s: %w", path, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return nil, fmt.Errorf("write %s: %w: it is a symbolic link (to %s); name the file itself", path, ErrRefused, target)
	case fi.IsDir():
		return nil, fmt.Errorf("write %s: %w: it is a directory; name a file in it", path, ErrRefused)
	case !fi.Mode().IsRegular():
		// a device, a pipe or a socket: write to it, never replace it
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		return &File{f: f, path: path}, nil
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // 0600
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{f: f, tmp: f.Name(), path: path}, nil
}

func (w *File) Write(p []byte) (int, error) { return w.f.Write(p) }

// Close finishes the file: synced and renamed into place for a regular file.
func (w *File) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.tmp == "" {
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", w.path, err)
		}
		return nil
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.path)
	}
	if err != nil {
		_ = os.Remove(w.tmp)
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// Abort drops what was written to a regular file; the old file stays.
func (w *File) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	_ = w.f.Close()
	if w.tmp != "" {
		_ = os.Remove(w.tmp)
	}
}

// Write writes path with write, as Create documents; an error from write
// leaves a regular file as it was.
func Write(path string, write func(io.Writer) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
