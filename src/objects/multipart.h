// Multipart uploads (S3 semantics) built from ordinary objects, so reference counting, GC
// and fsck need nothing new:
//   the upload      an object in namespace ".uploads", key "<bucket>/<upload id>", no data;
//                   its user metadata carries the target key and metadata;
//   each part       an object in namespace ".parts", key "<upload id>/<part number, 5 digits>",
//                   uploaded like any object (chunked, MD5 ETag) and replaced atomically
//                   when the same part number is uploaded again;
//   completion      one metadata transaction commits the final object with the parts'
//                   chunk lists concatenated (the chunks are linked, never copied) and
//                   retires the parts and the upload.
// Names starting with '.' cannot be chosen by users, so these never collide with user data.
// Thread-safety: as ObjectService.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "objects/object_service.h"

namespace cairn::objects {

inline constexpr uint64_t kMinPartSizeBytes = 5 * 1024 * 1024;
inline constexpr int kMaxPartNumber = 10000;

struct MultipartUpload {
  std::string upload_id;
  std::string tenant;
  std::string bucket;
  std::string key;
  StorageClass storage_class = StorageClass::kHot;
  std::string content_type;
  std::map<std::string, std::string> user_metadata;  // may include tags
  TimestampMs created_at_ms = 0;
  ObjectId record_id;  // the ".uploads" object
  // The checksum the API asked for at creation, opaque here ("" for none); kept in the
  // upload's record under kUploadChecksumField.
  std::string checksum;
};

// Where Create finds (in its metadata argument) and Get returns (in
// MultipartUpload::checksum) the upload's checksum request.
inline constexpr char kUploadChecksumField[] = "\x01upload:checksum";

// Extra work for Complete's read pass over the final object's bytes: `observe` sees every
// byte in order, then `finish` returns entries for the object's metadata (a full-object
// checksum of the whole content, say) or an error that fails the Complete. Both run
// before the commit.
struct CompletionHooks {
  std::function<void(std::string_view)> observe;
  std::function<Result<std::map<std::string, std::string>>()> finish;  // an error: nothing done
};

struct PartInfo {
  int part_number = 0;
  std::string etag;  // MD5 hex
  uint64_t size_bytes = 0;
  TimestampMs last_modified_ms = 0;
  ObjectId object_id;
  // The part's objects::kChecksumField entry; read only for uploads with a checksum.
  std::string checksum;
};

struct CompletedPartSpec {
  int part_number = 0;
  std::string etag;  // without quotes
};

// The entries of a Complete's part list as Complete counts them, in order: a part number
// listed twice in a row counts once, with its last entry (as S3 does: a client that
// re-sent a part may list both answers). `Part` is any type with a `part_number`
// (CompletedPartSpec, the S3 wire's CompletedPart); the pointers are into `listed`.
template <typename Part>
std::vector<const Part*> LastEntryPerPartNumber(const std::vector<Part>& listed) {
  std::vector<const Part*> unique;
  for (const Part& entry : listed) {
    if (!unique.empty() && unique.back()->part_number == entry.part_number) {
      unique.back() = &entry;
    } else {
      unique.push_back(&entry);
    }
  }
  return unique;
}

struct MultipartExpiryStats {
  uint64_t expired_uploads = 0;  // aborted because they were older than the cutoff
  uint64_t orphaned_parts = 0;   // parts of uploads that no longer exist, removed
};

class MultipartService {
 public:
  explicit MultipartService(ObjectService* objects) : objects_(objects) {}
  // Complete refuses an object larger than this (kPayloadTooLarge).
  void SetMaxObjectBytes(uint64_t bytes) { max_object_bytes_ = bytes; }

  Result<MultipartUpload> Create(const std::string& tenant, const std::string& bucket,
                                 const std::string& key, StorageClass storage_class,
                                 const std::string& content_type,
                                 std::map<std::string, std::string> user_metadata);
  // kNotFound unless the upload exists for exactly this tenant, bucket and key.
  Result<MultipartUpload> Get(const std::string& tenant, const std::string& bucket,
                              const std::string& key, const std::string& upload_id);
  // An Upload whose commit stores (or replaces) the part.
  Result<std::unique_ptr<Upload>> BeginPart(const MultipartUpload& upload, int part_number,
                                            std::optional<uint64_t> expected_size);
  // UploadPartCopy: links the source's chunks when [first, last] is the whole source or
  // falls on its chunk boundaries; otherwise copies that byte range (kFailedPrecondition
  // is never returned for alignment: the fallback always works).
  Result<PartInfo> CopyPart(const MultipartUpload& upload, int part_number,
                            const meta::ObjectRecord& source,
                            std::optional<std::pair<uint64_t, uint64_t>> range);
  // Parts with number > marker, ascending, at most `limit`; `truncated` set if more follow.
  Result<std::vector<PartInfo>> ListParts(const MultipartUpload& upload, int marker, int limit,
                                          bool* truncated);
  // kInvalidArgument (InvalidPart / InvalidPartOrder / EntityTooSmall, named in the message
  // prefix "InvalidPart:" etc.) when the list does not match the stored parts.
  Result<meta::CommitResult> Complete(const MultipartUpload& upload,
                                      const std::vector<CompletedPartSpec>& parts,
                                      const CompletionHooks& hooks = {});
  // After a Complete: the object at (bucket, key) if it was completed from `upload_id` with
  // this part list, so a retried Complete (the first answer lost) gets the same answer;
  // kNotFound otherwise (also once the object was replaced or deleted).
  Result<meta::ObjectRecord> CompletedFrom(const std::string& tenant, const std::string& bucket,
                                           const std::string& key, const std::string& upload_id,
                                           const std::vector<CompletedPartSpec>& specs);
  // Removes the upload's record, then its parts (their chunks are then unreferenced and
  // GC reclaims them after the grace period, as for any deleted object).
  Status Abort(const MultipartUpload& upload);
  // The expiry pass: aborts every upload of every tenant created before `cutoff_ms`, and
  // removes the parts created before `cutoff_ms` whose upload no longer exists (left by an
  // interrupted abort, or uploaded while their upload was being aborted). Safe to run on
  // several nodes at once and beside requests: every removal is its own transaction and
  // one that finds its object already gone is skipped.
  Result<MultipartExpiryStats> ExpireUploads(TimestampMs cutoff_ms);
  // In-progress uploads of a bucket whose key starts with `prefix`, by key then creation.
  Result<std::vector<MultipartUpload>> ListUploads(const std::string& tenant,
                                                   const std::string& bucket,
                                                   const std::string& prefix);

 private:
  Result<std::vector<PartInfo>> AllParts(const MultipartUpload& upload);
  Result<meta::CommitResult> CompleteOnce(const MultipartUpload& upload,
                                          const std::vector<CompletedPartSpec>& parts,
                                          const CompletionHooks& hooks);
  // kNotFound ("NoSuchUpload") if the upload's record is gone, else `status`.
  Status GoneOr(const MultipartUpload& upload, Status status);
  Status DeleteParts(const std::string& tenant, const std::vector<PartInfo>& parts,
                     TimestampMs now);
  Status ExpireTenant(const std::string& tenant, TimestampMs cutoff_ms,
                      MultipartExpiryStats* stats);

  uint64_t max_object_bytes_ = UINT64_MAX;
  ObjectService* objects_;
};

// Deletes an empty bucket (namespace) of `tenant`, as S3's DeleteBucket does: incomplete
// multipart uploads do not keep it alive (once no object is left they are aborted, their
// parts left to GC); an object committed meanwhile makes the delete fail. kFailedPrecondition
// when it holds objects, kNotFound when there is no such bucket.
Status DeleteBucket(ObjectService* objects, MultipartService* multipart, const std::string& tenant,
                    const std::string& bucket);

}  // namespace cairn::objects
