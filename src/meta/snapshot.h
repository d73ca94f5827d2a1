// The metadata snapshot file: what `cairn meta dump` writes, `cairn meta load` reads and
// `cairn serve --backup-meta` rotates. Engine-neutral, so a snapshot taken from one engine
// loads into any other.
//
// Format (version 4): UTF-8 JSON Lines.
//   line 1      header  {"format":"cairn-meta-snapshot","version":4,"engine":"sqlite",
//                        "created_at":"<RFC 3339>","created_at_ms":N,"counts":{...},
//                        "store_id":"<uuid>"}   (store_id only once the store has one)
//   then        records {"type":"api_key"|"s3_key"|"namespace"|"namespace_setting"|
//                        "chunk"|"object"|"owner"|"volume"|"inode"|"dentry"|"xattr",...},
//                        in that order of kinds, one per line
//   last line   trailer {"type":"end","counts":{...},"sha256":"<hex>"}
// Version 2 added namespace_setting records and their count ("namespace_settings");
// version 3 added owner records ({"type":"owner","kind":..,"id":..,"chunks":[[class,
// digest, size],...]}: a generic chunk owner and its list) and their count ("owners").
// version 4 added the filesystem volume (records.h says what of it a snapshot holds):
// one {"type":"volume",name,uuid,created_ms,trash_days,format_version,next_ino} record,
// then {"type":"inode",ino,file_type,mode,...,symlink_target (symlinks only)} by ino,
// {"type":"dentry",parent,name,ino,file_type} by (parent, name) and
// {"type":"xattr",ino,name,value (base64)} by (ino, name), with their counts ("volumes",
// "inodes", "dentries", "xattrs"); an owner record may carry "sequences" (a file's block
// indexes, when its list has holes). Every inode, entry and xattr record follows the
// volume record.
// A snapshot is written with the oldest version that holds its records: without a volume
// as version 3 or older, without owners
// and settings as version 1, exactly as before them, without owners as version 2, so
// older binaries still load it; a newer version is refused by them up front instead of
// dropping records. Versions 1 to 4 are read.
// The trailer's sha256 covers every byte before it (header and records, newlines included),
// and both header and trailer carry the record counts, so a truncated, reordered or
// corrupted file is refused. Binary fields are hex (ids as UUID text, digests and secret
// hashes as 64 hex) or base64 (inline object data); a text field that is not valid UTF-8
// is written as {"hex":"..."} instead of a string.
//
// Thread-safety: a writer or reader is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/hashing.h"
#include "core/status.h"
#include "meta/meta_store.h"

namespace cairn::meta {

// The newest format version this binary reads and writes.
inline constexpr int kSnapshotFormatVersion = 4;
inline constexpr std::string_view kSnapshotFormatName = "cairn-meta-snapshot";
// Longest record line a reader accepts (an object of ~3 million chunks).
inline constexpr size_t kMaxSnapshotLineBytes = 256u << 20;

struct SnapshotHeader {
  int version = kSnapshotFormatVersion;  // as written: the oldest that fits (above)
  std::string engine;  // where the snapshot was taken: "sqlite", "postgres", "memory"
  TimestampMs created_at_ms = 0;
  SnapshotCounts counts;
  // The identity of the store the snapshot was taken from (gc/store_identity.h); empty in
  // snapshots of stores without one. `cairn meta load` gives it to the restored store, so
  // that the storage roots recognise their metadata.
  std::string store_id;
};

// Receives the file's bytes in order.
using SnapshotByteSink = std::function<Status(std::string_view bytes)>;
// Fills `buffer` with up to `capacity` bytes; 0 means the end of the input.
using SnapshotByteSource = std::function<Result<size_t>(char* buffer, size_t capacity)>;

// Renders a snapshot as it is visited. Output is buffered (about 1 MiB) before it reaches
// the sink; Finish writes the trailer and flushes.
class SnapshotWriter final : public SnapshotVisitor {
 public:
  SnapshotWriter(SnapshotByteSink sink, std::string engine, TimestampMs created_at_ms);
  // Before Begin: the store identity recorded in the header.
  void set_store_id(std::string store_id) { header_.store_id = std::move(store_id); }

  Status Begin(const SnapshotCounts& counts) override;
  Status Visit(const SnapshotRecord& record) override;
  // kInternal if the records visited differ from the counts given to Begin (an engine bug).
  Status Finish();

  const SnapshotCounts& counts() const { return written_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  Status WriteLine(const std::string& line, bool hashed);
  Status Flush();

  SnapshotByteSink sink_;
  SnapshotHeader header_;
  bool begun_ = false;
  SnapshotCounts written_;
  Sha256Hasher hasher_;
  std::string buffer_;
  uint64_t bytes_written_ = 0;
};

// Parses and verifies a snapshot stream. Every record is checked as it is read; the end
// (nullopt from Next) is reported only after the trailer matched the counts and the
// SHA-256 of everything before it. Errors: kFailedPrecondition for another format or a
// newer version, kDataLoss for a truncated or corrupted file (checksum, counts, missing
// trailer, bytes after it), kInvalidArgument for a malformed record, with the line number.
class SnapshotReader final : public SnapshotSource {
 public:
  explicit SnapshotReader(SnapshotByteSource source);

  // Reads the header if not done yet (Next does it too).
  Result<SnapshotHeader> Header();
  Result<std::optional<SnapshotRecord>> Next() override;

  const SnapshotCounts& counts() const { return read_; }

 private:
  // The next line without its newline; nullopt at a clean end of input.
  Result<std::optional<std::string>> ReadLine();
  Status Fail(Status status) const;

  SnapshotByteSource source_;
  std::optional<SnapshotHeader> header_;
  SnapshotCounts read_;
  int last_kind_ = -1;
  bool finished_ = false;
  uint64_t line_number_ = 0;
  Sha256Hasher hasher_;
  std::string buffer_;
  size_t buffer_start_ = 0;
  bool source_done_ = false;
};

// Exports `store` through a SnapshotWriter into `sink` and finishes the file. The header
// carries the store's identity (read before the export: an identity never changes).
Result<SnapshotCounts> DumpSnapshot(MetaStore& store, const std::string& engine, TimestampMs now_ms,
                                    const SnapshotByteSink& sink,
                                    uint64_t* bytes_written = nullptr);

// "sqlite", "postgres" or "memory" for a metadata URL (what OpenMetaStore accepts).
std::string SnapshotEngineOfUrl(const std::string& url);

}  // namespace cairn::meta
