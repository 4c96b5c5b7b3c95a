// Package lockview shows who holds a lock, the one way this project shows
// it: in reads of a lock through the mount (nfslockfs --format text or json)
// and in nfslock status and break. Text is "name: value" lines, for people
// and grep; JSON is one object per lock, for programs.
//
// The fields, in order, with their text and JSON names:
//
//	text        JSON              what
//	host        host              the holder's host
//	pid         pid               the holder's process id
//	started     start_time        when that process started (if the record says)
//	held-since  held_since        when the lock was taken: the lock file's mtime,
//	                              or in a lease directory the time its holder
//	                              declared
//	message     message           the record's message (message_hex: see below)
//	raw         raw               a corrupt record's bytes, in place of the four
//	                              record fields (raw_hex: see below)
//	token       token             the holder's fencing token (lease directories)
//	lease       lease_seconds     the holder's lease (lease directories)
//	renewed     renewed           the last renewal, by the server's clock
//	                              (lease directories)
//	(none)      state             alive, dead, remote or corrupt (the words of
//	                              nfslock.HolderState), or free
//
// Text names follow the layout readers of the mount see; JSON names follow
// the fields of Core's record (start_time). A caller may add its own fields
// around these (nfslock status adds path, state and held-for), never other
// names for these. With the server's current time (WithServerTime,
// AppendServerTime), a lease is also shown as renewed-ago (renewed_ago_seconds)
// and expires-in (expires_in_seconds, negative once expired), both by the
// server's clock. Times are RFC 3339 in UTC with microseconds, the
// precision of Core's records.
//
// In text, a value's backslashes, invalid UTF-8 and non-printable
// characters (newlines included) are escaped as in a Go string literal, so
// that each field stays on its line and every byte can be recovered; spaces
// and quotes are left as they are. JSON carries text exactly; a message,
// record or path that is not valid UTF-8, which JSON text cannot carry, is
// given in hex instead (message_hex, raw_hex, path_hex).
package lockview
