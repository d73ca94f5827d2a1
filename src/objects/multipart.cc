#include "objects/multipart.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/text.h"

namespace cairn::objects {
namespace {

constexpr const char* kUploadsNamespace = kMultipartUploadsNamespace;
constexpr const char* kPartsNamespace = kMultipartPartsNamespace;
constexpr char kTargetKeyField[] = "\x01upload:key";
// On a completed object: the upload it was completed from, so that a retried Complete
// (its first answer lost) can be recognised and answered as the first one was.
constexpr char kCompletedFromField[] = "\x01upload:from";
constexpr size_t kReadBufferBytes = 1 << 20;

std::string PartKey(const std::string& upload_id, int part_number) {
  char number[8];
  snprintf(number, sizeof(number), "%05d", part_number);
  return upload_id + "/" + number;
}

Status PartError(ErrorReason reason, std::string message) {
  return InvalidArgumentError(std::move(message)).WithReason(reason);
}

Status NoSuchUpload(std::string message) {
  return NotFoundError(std::move(message)).WithReason(ErrorReason::kNoSuchUpload);
}

// Streams bytes [first, first + length) of the concatenated `chunks` to `sink`, each
// verified as a download verifies it (a damaged chunk is reported, never passed on into a
// new object's bytes or hashes).
Status ReadChunks(ObjectService* objects, const ObjectId& owner, StorageClass storage_class,
                  const std::vector<meta::ChunkRef>& chunks, uint64_t first, uint64_t length,
                  const std::function<Status(std::string_view)>& sink) {
  std::unique_ptr<ObjectReader> reader = objects->OpenChunkListReader(owner, storage_class, chunks);
  std::string buffer(kReadBufferBytes, '\0');
  uint64_t offset = first;
  const uint64_t end = first + length;
  while (offset < end) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), end - offset));
    ASSIGN_OR_RETURN(size_t n, reader->Read(offset, want, buffer.data()));
    if (n == 0) return DataLossError("the chunks of " + owner.ToString() + " end too early");
    RETURN_IF_ERROR(sink(std::string_view(buffer.data(), n)));
    offset += n;
  }
  return OkStatus();
}

}  // namespace

Result<MultipartUpload> MultipartService::Create(const std::string& tenant,
                                                 const std::string& bucket, const std::string& key,
                                                 StorageClass storage_class,
                                                 const std::string& content_type,
                                                 std::map<std::string, std::string> metadata) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  RETURN_IF_ERROR(ValidateName("bucket", bucket));
  RETURN_IF_ERROR(ValidateKey(key));
  MultipartUpload upload;
  upload.record_id = platform::NewObjectId();
  upload.upload_id = platform::NewObjectId().ToString();
  upload.tenant = tenant;
  upload.bucket = bucket;
  upload.key = key;
  upload.storage_class = storage_class;
  upload.content_type = content_type;
  upload.user_metadata = std::move(metadata);
  upload.created_at_ms = objects_->clock()->NowMs();

  meta::ObjectRecord record;
  record.id = upload.record_id;
  record.tenant = tenant;
  record.namespace_name = kUploadsNamespace;
  record.key = bucket + "/" + upload.upload_id;
  record.state = ObjectState::kCommitted;
  record.storage_class = storage_class;
  record.content_hash = Sha256Of("");
  record.content_type = content_type;
  record.user_metadata = upload.user_metadata;
  record.user_metadata[kTargetKeyField] = key;
  record.created_at_ms = upload.created_at_ms;
  record.updated_at_ms = upload.created_at_ms;
  record.inline_data = std::string();
  RETURN_IF_ERROR(objects_->meta_store()->PutCommitted(record, {}, upload.created_at_ms).status());
  return upload;
}

Result<MultipartUpload> MultipartService::Get(const std::string& tenant, const std::string& bucket,
                                              const std::string& key,
                                              const std::string& upload_id) {
  auto id = ObjectId::Parse(upload_id);
  if (!id.ok() || ValidateName("bucket", bucket).code() != StatusCode::kOk) {
    return NoSuchUpload("no multipart upload " + upload_id.substr(0, 64));
  }
  auto record =
      objects_->meta_store()->GetObjectByKey(tenant, kUploadsNamespace, bucket + "/" + upload_id);
  if (!record.ok()) {
    if (record.status().code() == StatusCode::kNotFound) {
      return NoSuchUpload("no multipart upload " + upload_id);
    }
    return record.status();
  }
  auto target = record->user_metadata.find(kTargetKeyField);
  if (target == record->user_metadata.end() || target->second != key) {
    return NoSuchUpload("multipart upload " + upload_id + " is not for this key");
  }
  MultipartUpload upload;
  upload.upload_id = upload_id;
  upload.tenant = tenant;
  upload.bucket = bucket;
  upload.key = key;
  upload.storage_class = record->storage_class;
  upload.content_type = record->content_type;
  upload.user_metadata = record->user_metadata;
  upload.user_metadata.erase(kTargetKeyField);
  if (auto checksum = upload.user_metadata.find(kUploadChecksumField);
      checksum != upload.user_metadata.end()) {
    upload.checksum = checksum->second;
    upload.user_metadata.erase(checksum);
  }
  upload.created_at_ms = record->created_at_ms;
  upload.record_id = record->id;
  return upload;
}

Result<std::unique_ptr<Upload>> MultipartService::BeginPart(const MultipartUpload& upload,
                                                            int part_number,
                                                            std::optional<uint64_t> expected_size) {
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return InvalidArgumentError("part number must be between 1 and 10000");
  }
  UploadRequest request;
  request.tenant = upload.tenant;
  request.namespace_name = kPartsNamespace;
  request.key = PartKey(upload.upload_id, part_number);
  request.storage_class = upload.storage_class;
  request.content_type = "application/octet-stream";
  request.expected_size = expected_size;
  request.compute_md5 = true;
  request.allow_inline = false;
  request.internal_namespace = true;
  return objects_->BeginUpload(std::move(request));
}

Result<PartInfo> MultipartService::CopyPart(const MultipartUpload& upload, int part_number,
                                            const meta::ObjectRecord& source,
                                            std::optional<std::pair<uint64_t, uint64_t>> range) {
  uint64_t first = 0, length = source.size_bytes;
  if (range) {
    if (range->first > range->second || range->second >= source.size_bytes) {
      return OutOfRangeError("copy source range is outside the source object");
    }
    first = range->first;
    length = range->second - range->first + 1;
  }
  std::vector<meta::ChunkRef> source_chunks;
  if (!source.inline_data) {
    ASSIGN_OR_RETURN(source_chunks, objects_->meta_store()->GetChunks(source.id));
  }
  // The chunks covering exactly [first, first + length), if the range is aligned.
  std::optional<std::vector<meta::ChunkRef>> linked;
  if (!source.inline_data && length > 0) {
    std::vector<meta::ChunkRef> subset;
    uint64_t start = 0;
    bool aligned_start = false, aligned_end = false;
    for (const auto& chunk : source_chunks) {
      const uint64_t end = start + chunk.size_bytes;
      if (start == first) aligned_start = true;
      if (aligned_start && start < first + length) subset.push_back(chunk);
      if (end == first + length) aligned_end = true;
      start = end;
    }
    if (aligned_start && aligned_end) linked = std::move(subset);
  }

  if (!linked) {
    // Unaligned (or inline) source: copy the range through an ordinary part upload.
    ASSIGN_OR_RETURN(auto part, BeginPart(upload, part_number, length));
    Status status = OkStatus();
    if (source.inline_data) {
      status = part->Write(std::string_view(*source.inline_data).substr(first, length));
    } else {
      status = ReadChunks(objects_, source.id, source.storage_class, source_chunks, first, length,
                          [&part](std::string_view bytes) { return part->Write(bytes); });
    }
    if (!status.ok()) {
      part->Abort();
      return status;
    }
    ASSIGN_OR_RETURN(meta::CommitResult committed, part->Commit());
    return PartInfo{part_number,
                    committed.object.etag,
                    committed.object.size_bytes,
                    committed.object.updated_at_ms,
                    committed.object.id,
                    {}};
  }

  // Aligned: link the chunks. Only the MD5 for the part's ETag needs the bytes, and only
  // when the source's own ETag is not already the MD5 of exactly this range.
  std::string etag;
  const bool whole_single_part =
      first == 0 && length == source.size_bytes && source.etag.size() == 32;
  Sha256Hasher sha256;
  if (whole_single_part) {
    etag = source.etag;
  } else {
    Md5Hasher md5;
    RETURN_IF_ERROR(ReadChunks(objects_, source.id, source.storage_class, source_chunks, first,
                               length, [&](std::string_view bytes) {
                                 md5.Update(bytes);
                                 sha256.Update(bytes);
                                 return OkStatus();
                               }));
    etag = HexEncode(md5.Finish());
  }
  if (source.storage_class != upload.storage_class) {
    return InvalidArgumentError(
        "copying between storage classes links no chunks; copy the object first");
  }
  meta::ObjectRecord part;
  part.id = platform::NewObjectId();
  part.tenant = upload.tenant;
  part.namespace_name = kPartsNamespace;
  part.key = PartKey(upload.upload_id, part_number);
  part.state = ObjectState::kCommitted;
  part.storage_class = upload.storage_class;
  part.size_bytes = length;
  part.content_hash = whole_single_part ? source.content_hash : sha256.Finish();
  part.etag = etag;
  part.content_type = "application/octet-stream";
  const TimestampMs now = objects_->clock()->NowMs();
  part.created_at_ms = now;
  part.updated_at_ms = now;
  ASSIGN_OR_RETURN(meta::CommitResult committed,
                   objects_->meta_store()->PutCommitted(part, *linked, now));
  return PartInfo{part_number, etag, length, now, committed.object.id, {}};
}

Result<std::vector<PartInfo>> MultipartService::AllParts(const MultipartUpload& upload) {
  meta::ListRequest request;
  request.tenant = upload.tenant;
  request.namespace_name = kPartsNamespace;
  request.prefix = upload.upload_id + "/";
  request.limit = kMaxPartNumber;
  ASSIGN_OR_RETURN(meta::ListPage page, objects_->meta_store()->ListObjects(request));
  std::vector<PartInfo> parts;
  for (const auto& object : page.objects) {
    const int number = atoi(object.key.c_str() + request.prefix.size());
    parts.push_back(
        PartInfo{number, object.etag, object.size_bytes, object.updated_at_ms, object.id, {}});
  }
  if (!upload.checksum.empty()) {
    // Listings leave user metadata out: each part's checksum is in its record.
    for (PartInfo& part : parts) {
      ASSIGN_OR_RETURN(meta::ObjectRecord record,
                       objects_->meta_store()->GetObject(upload.tenant, part.object_id));
      auto checksum = record.user_metadata.find(std::string(kChecksumField));
      if (checksum != record.user_metadata.end()) part.checksum = checksum->second;
    }
  }
  return parts;
}

Result<std::vector<PartInfo>> MultipartService::ListParts(const MultipartUpload& upload, int marker,
                                                          int limit, bool* truncated) {
  ASSIGN_OR_RETURN(std::vector<PartInfo> all, AllParts(upload));
  std::vector<PartInfo> out;
  *truncated = false;
  for (auto& part : all) {
    if (part.part_number <= marker) continue;
    if (static_cast<int>(out.size()) >= limit) {
      *truncated = true;
      break;
    }
    out.push_back(std::move(part));
  }
  return out;
}

Status MultipartService::GoneOr(const MultipartUpload& upload, Status status) {
  auto record = objects_->meta_store()->GetObject(upload.tenant, upload.record_id);
  if (!record.ok() && record.status().code() == StatusCode::kNotFound) {
    return NoSuchUpload("multipart upload " + upload.upload_id +
                        " was aborted or completed meanwhile");
  }
  return status;
}

Result<meta::CommitResult> MultipartService::Complete(const MultipartUpload& upload,
                                                      const std::vector<CompletedPartSpec>& specs,
                                                      const CompletionHooks& hooks) {
  Result<meta::CommitResult> result = CompleteOnce(upload, specs, hooks);
  // Abort removes the upload's record before its parts, so a part that went missing, or a
  // part or the record gone at commit, means the upload went first: the answer is
  // NoSuchUpload, never InvalidPart.
  if (!result.ok()) return GoneOr(upload, result.status());
  return result;
}

Result<meta::CommitResult> MultipartService::CompleteOnce(
    const MultipartUpload& upload, const std::vector<CompletedPartSpec>& listed,
    const CompletionHooks& hooks) {
  if (listed.empty()) return PartError(ErrorReason::kEmptyPartList, "the part list is empty");
  // Ascending; a part number listed twice in a row counts once, with its last entry.
  for (size_t i = 1; i < listed.size(); ++i) {
    if (listed[i].part_number < listed[i - 1].part_number) {
      return PartError(ErrorReason::kInvalidPartOrder, "parts must be listed in ascending order");
    }
  }
  const std::vector<const CompletedPartSpec*> specs = LastEntryPerPartNumber(listed);
  ASSIGN_OR_RETURN(std::vector<PartInfo> stored, AllParts(upload));
  std::map<int, const PartInfo*> by_number;
  for (const auto& part : stored) by_number[part.part_number] = &part;

  std::vector<meta::ChunkRef> chunks;
  std::string md5_concatenation;
  uint64_t size = 0;
  std::vector<std::pair<uint64_t, int>> layout;  // (part size, how many in a row)
  for (size_t i = 0; i < specs.size(); ++i) {
    auto it = by_number.find(specs[i]->part_number);
    std::string wanted = ToLowerAscii(specs[i]->etag);
    wanted.erase(std::remove(wanted.begin(), wanted.end(), '"'), wanted.end());
    if (it == by_number.end() || ToLowerAscii(it->second->etag) != wanted) {
      return PartError(ErrorReason::kInvalidPart,
                       "part " + std::to_string(specs[i]->part_number) +
                           " was not uploaded or its ETag does not match");
    }
    const PartInfo& part = *it->second;
    if (i + 1 < specs.size() && part.size_bytes < kMinPartSizeBytes) {
      return PartError(ErrorReason::kEntityTooSmall,
                       "part " + std::to_string(part.part_number) +
                           " is smaller than 5 MiB and is not the last");
    }
    ASSIGN_OR_RETURN(std::vector<meta::ChunkRef> part_chunks,
                     objects_->meta_store()->GetChunks(part.object_id));
    chunks.insert(chunks.end(), part_chunks.begin(), part_chunks.end());
    auto md5 = HexDecode(part.etag);
    if (!md5.ok() || md5->size() != 16) {
      return InternalError("part " + std::to_string(part.part_number) + " has no MD5 ETag");
    }
    md5_concatenation += *md5;
    size += part.size_bytes;
    if (!layout.empty() && layout.back().first == part.size_bytes) {
      ++layout.back().second;
    } else {
      layout.emplace_back(part.size_bytes, 1);
    }
  }
  if (size > max_object_bytes_) {
    return PayloadTooLargeError("the parts add up to " + std::to_string(size) +
                                " bytes; the largest object allowed is " +
                                std::to_string(max_object_bytes_) + " bytes");
  }
  // The whole-content SHA-256 needs one read pass; the data itself is not written again.
  Sha256Hasher content;
  RETURN_IF_ERROR(ReadChunks(objects_, upload.record_id, upload.storage_class, chunks, 0, size,
                             [&content, &hooks](std::string_view bytes) {
                               content.Update(bytes);
                               if (hooks.observe) hooks.observe(bytes);
                               return OkStatus();
                             }));
  Md5Hasher md5_of_md5s;
  md5_of_md5s.Update(md5_concatenation);

  meta::ObjectRecord object;
  object.id = platform::NewObjectId();
  object.tenant = upload.tenant;
  object.namespace_name = upload.bucket;
  object.key = upload.key;
  object.state = ObjectState::kCommitted;
  object.storage_class = upload.storage_class;
  object.size_bytes = size;
  object.content_hash = content.Finish();
  object.etag = HexEncode(md5_of_md5s.Finish()) + "-" + std::to_string(specs.size());
  object.content_type = upload.content_type;
  object.user_metadata = upload.user_metadata;
  object.user_metadata[kCompletedFromField] = upload.upload_id;
  std::string layout_text;
  for (const auto& run : layout) {
    if (!layout_text.empty()) layout_text += ',';
    layout_text += std::to_string(run.first) + "*" + std::to_string(run.second);
  }
  object.user_metadata[std::string(kPartLayoutField)] = layout_text;
  if (hooks.finish) {
    ASSIGN_OR_RETURN(auto extra, hooks.finish());
    for (auto& entry : extra) object.user_metadata[entry.first] = entry.second;
  }
  const TimestampMs now = objects_->clock()->NowMs();
  object.created_at_ms = now;
  object.updated_at_ms = now;
  if (chunks.empty()) object.inline_data = std::string();
  std::vector<ObjectId> retire;
  for (const auto& part : stored) retire.push_back(part.object_id);
  retire.push_back(upload.record_id);
  return objects_->meta_store()->PutCommittedAndDelete(object, chunks, retire, now);
}

Result<meta::ObjectRecord> MultipartService::CompletedFrom(
    const std::string& tenant, const std::string& bucket, const std::string& key,
    const std::string& upload_id, const std::vector<CompletedPartSpec>& specs) {
  ASSIGN_OR_RETURN(meta::ObjectRecord object,
                   objects_->meta_store()->GetObjectByKey(tenant, bucket, key));
  auto from = object.user_metadata.find(kCompletedFromField);
  if (from == object.user_metadata.end() || from->second != upload_id || specs.empty()) {
    return NoSuchUpload("no multipart upload " + upload_id.substr(0, 64));
  }
  // The same part list gives the same ETag: MD5 of the parts' MD5s, and their count (a
  // part number listed twice in a row counted once, with its last entry, as Complete does).
  const std::vector<const CompletedPartSpec*> unique = LastEntryPerPartNumber(specs);
  std::string md5_concatenation;
  for (const CompletedPartSpec* spec : unique) {
    std::string hex = ToLowerAscii(spec->etag);
    hex.erase(std::remove(hex.begin(), hex.end(), '"'), hex.end());
    auto md5 = HexDecode(hex);
    if (!md5.ok() || md5->size() != 16) {
      return NoSuchUpload("no multipart upload " + upload_id.substr(0, 64));
    }
    md5_concatenation += *md5;
  }
  Md5Hasher md5_of_md5s;
  md5_of_md5s.Update(md5_concatenation);
  if (object.etag != HexEncode(md5_of_md5s.Finish()) + "-" + std::to_string(unique.size())) {
    return NoSuchUpload("multipart upload " + upload_id.substr(0, 64) +
                        " was completed with a different part list");
  }
  return object;
}

Status MultipartService::Abort(const MultipartUpload& upload) {
  // The upload's record first, in one transaction: from then on the upload does not exist
  // for anyone (a Complete racing this abort fails at its commit, which retires the record,
  // or finds a part missing and then the record gone: NoSuchUpload either way). If this
  // is interrupted before its parts are gone, the expiry pass removes them as orphans.
  const TimestampMs now = objects_->clock()->NowMs();
  RETURN_IF_ERROR(
      objects_->meta_store()->DeleteObject(upload.tenant, upload.record_id, now).status());
  ASSIGN_OR_RETURN(std::vector<PartInfo> parts, AllParts(upload));
  return DeleteParts(upload.tenant, parts, now);
}

Status MultipartService::DeleteParts(const std::string& tenant, const std::vector<PartInfo>& parts,
                                     TimestampMs now) {
  for (const auto& part : parts) {
    Status status = objects_->meta_store()->DeleteObject(tenant, part.object_id, now).status();
    if (!status.ok() && status.code() != StatusCode::kNotFound) return status;
  }
  return OkStatus();
}

Result<MultipartExpiryStats> MultipartService::ExpireUploads(TimestampMs cutoff_ms) {
  ASSIGN_OR_RETURN(std::vector<meta::ObjectCountRow> counts,
                   objects_->meta_store()->CountObjects());
  std::set<std::string> tenants;
  for (const auto& row : counts) {
    if (row.state == ObjectState::kCommitted &&
        (row.namespace_name == kUploadsNamespace || row.namespace_name == kPartsNamespace)) {
      tenants.insert(row.tenant);
    }
  }
  MultipartExpiryStats stats;
  for (const std::string& tenant : tenants) {
    RETURN_IF_ERROR(ExpireTenant(tenant, cutoff_ms, &stats));
  }
  return stats;
}

Status MultipartService::ExpireTenant(const std::string& tenant, TimestampMs cutoff_ms,
                                      MultipartExpiryStats* stats) {
  // Uploads first. Every upload this pass keeps is listed before any part is looked at, so
  // a part older than the cutoff whose upload is not among them is an orphan: its upload
  // was created before it, so before this listing, and is gone (or was just aborted).
  std::set<std::string> kept;
  meta::ListRequest request;
  request.tenant = tenant;
  request.namespace_name = kUploadsNamespace;
  for (;;) {
    ASSIGN_OR_RETURN(meta::ListPage page, objects_->meta_store()->ListObjects(request));
    for (const auto& record : page.objects) {
      const size_t slash = record.key.find('/');
      if (slash == std::string::npos) continue;
      MultipartUpload upload;
      upload.tenant = tenant;
      upload.bucket = record.key.substr(0, slash);
      upload.upload_id = record.key.substr(slash + 1);
      upload.record_id = record.id;
      if (record.created_at_ms >= cutoff_ms) {
        kept.insert(upload.upload_id);
        continue;
      }
      Status aborted = Abort(upload);
      if (aborted.ok()) {
        ++stats->expired_uploads;
      } else if (aborted.code() != StatusCode::kNotFound) {  // completed or aborted meanwhile
        return aborted.WithContext("expiring multipart upload " + upload.upload_id);
      }
    }
    if (!page.truncated || page.objects.empty()) break;
    request.start_after = page.objects.back().key;
  }

  request.namespace_name = kPartsNamespace;
  request.start_after.clear();
  const TimestampMs now = objects_->clock()->NowMs();
  for (;;) {
    ASSIGN_OR_RETURN(meta::ListPage page, objects_->meta_store()->ListObjects(request));
    std::vector<PartInfo> orphans;
    for (const auto& record : page.objects) {
      const std::string upload_id = record.key.substr(0, record.key.find('/'));
      if (record.created_at_ms < cutoff_ms && !kept.contains(upload_id)) {
        orphans.push_back(PartInfo{0, record.etag, record.size_bytes, 0, record.id, {}});
      }
    }
    RETURN_IF_ERROR(DeleteParts(tenant, orphans, now));
    stats->orphaned_parts += orphans.size();
    if (!page.truncated || page.objects.empty()) break;
    request.start_after = page.objects.back().key;
  }
  return OkStatus();
}

Result<std::vector<MultipartUpload>> MultipartService::ListUploads(const std::string& tenant,
                                                                   const std::string& bucket,
                                                                   const std::string& prefix) {
  meta::ListRequest request;
  request.tenant = tenant;
  request.namespace_name = kUploadsNamespace;
  request.prefix = bucket + "/";
  request.limit = 10000;
  ASSIGN_OR_RETURN(meta::ListPage page, objects_->meta_store()->ListObjects(request));
  std::vector<MultipartUpload> uploads;
  for (const auto& listed : page.objects) {
    // Listings leave user metadata out: read each record for its target key.
    auto record = objects_->meta_store()->GetObject(tenant, listed.id);
    if (!record.ok()) continue;  // completed or aborted meanwhile
    auto target = record->user_metadata.find(kTargetKeyField);
    if (target == record->user_metadata.end() || !target->second.starts_with(prefix)) continue;
    MultipartUpload upload;
    upload.upload_id = listed.key.substr(request.prefix.size());
    upload.tenant = tenant;
    upload.bucket = bucket;
    upload.key = target->second;
    upload.storage_class = record->storage_class;
    upload.content_type = record->content_type;
    upload.created_at_ms = record->created_at_ms;
    upload.record_id = record->id;
    uploads.push_back(std::move(upload));
  }
  std::sort(uploads.begin(), uploads.end(), [](const auto& a, const auto& b) {
    return std::tie(a.key, a.created_at_ms, a.upload_id) <
           std::tie(b.key, b.created_at_ms, b.upload_id);
  });
  return uploads;
}

Status DeleteBucket(ObjectService* objects, MultipartService* multipart, const std::string& tenant,
                    const std::string& bucket) {
  meta::ListRequest probe;
  probe.tenant = tenant;
  probe.namespace_name = bucket;
  probe.limit = 1;
  ASSIGN_OR_RETURN(meta::ListPage page, objects->meta_store()->ListObjects(probe));
  if (!page.objects.empty()) return FailedPreconditionError("the bucket is not empty");
  for (int round = 0; round < 1000; ++round) {  // 10,000 uploads a round
    ASSIGN_OR_RETURN(std::vector<MultipartUpload> uploads,
                     multipart->ListUploads(tenant, bucket, ""));
    if (uploads.empty()) break;
    for (const MultipartUpload& upload : uploads) {
      Status aborted = multipart->Abort(upload);
      if (!aborted.ok() && aborted.code() != StatusCode::kNotFound) return aborted;
    }
  }
  Status status = objects->DeleteNamespace(tenant, bucket);
  // A namespace that only ever existed through its objects has no row to remove.
  if (status.code() == StatusCode::kNotFound && objects->GetNamespace(tenant, bucket).ok()) {
    return OkStatus();
  }
  return status;
}

}  // namespace cairn::objects
