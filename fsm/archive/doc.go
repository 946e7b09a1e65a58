// Package archive reads and writes Hourglass backup archives: the whole
// state of a cluster at one raft index, in a file a user can keep, check
// offline and restore.
//
// An archive is a gzip stream (its header comment is "hourglass-snapshot")
// holding a tar of exactly three files, in this order:
//
//	meta.json    what the archive is: format and version, the Hourglass
//	             version that wrote it, state schema, raft index and term,
//	             creation time, node, state size and task counts by state
//	state.db     the state machine's bbolt file as of that index
//	SHA256SUMS   SHA-256 of meta.json and state.db, in sha256sum's format
//
// so "tar -xzf FILE && sha256sum -c SHA256SUMS" checks one by hand. Write
// streams an archive without holding it in memory. Read checks everything a
// byte stream can show (gzip framing and CRC, tar structure and header
// checksums, the format and its version, sizes, both digests, nothing
// before or after) while it streams; Extract goes further and opens the
// state it wrote to disk, checks every page, record and index, and compares
// the result with meta.json.
package archive
