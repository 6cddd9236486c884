package topology

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// dropMappedPages takes the pages of bbolt's memory map that tx's reads
// brought in out of the process's resident memory (madvise
// MADV_DONTNEED; the map is shared and read-only, so the pages stay in
// the page cache and come back on the next read). Loading the store reads
// every page (and bbolt reads them all again to rebuild its freelist on
// open), but afterwards the store is served from memory and bbolt touches
// only the pages a commit walks: at 100,000 hosts this was 104 MiB of RSS
// for nothing (issue 17). Called inside a read transaction, so the map
// cannot move meanwhile. Errors are ignored: the pages only stay mapped.
func dropMappedPages(db *bolt.DB, tx *bolt.Tx) {
	info := db.Info()
	size := tx.Size()
	if info == nil || info.Data == 0 || size <= 0 {
		return
	}
	// A raw syscall on the address: no Go pointer is made from it.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(size), unix.MADV_DONTNEED)
}
