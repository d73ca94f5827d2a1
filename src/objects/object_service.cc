#include "objects/object_service.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

namespace cairn::objects {
namespace {

Status ValidateLocation(const std::string& tenant, const std::string& namespace_name,
                        const std::string& key) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  RETURN_IF_ERROR(ValidateName("namespace", namespace_name));
  return ValidateKey(key);
}

}  // namespace

std::string EtagWithoutMd5(const Digest& content_hash) {
  return content_hash.ToHex().substr(0, 32) + "-1";
}

// ---- Upload ---------------------------------------------------------------------------

Upload::Upload(ObjectService* service, UploadRequest request)
    : service_(service),
      request_(std::move(request)),
      id_(platform::NewObjectId()),
      ingest_(service->chunk_store(), service->chunk_health(), request_.storage_class,
              "object " + id_.ToString(), [this](const meta::ChunkRef& chunk) {
                return service_->meta_store()->AddChunk(id_, next_sequence_++, chunk,
                                                        service_->clock()->NowMs());
              }) {
  if (request_.compute_md5 || request_.expected_md5) md5_hasher_.emplace();
}

Upload::~Upload() {
  if (!finished_) Abort();
}

std::shared_ptr<Md5Hasher> Upload::TakeMd5() {
  if (!md5_hasher_) return nullptr;
  md5_hasher_.reset();
  md5_taken_ = true;
  return std::make_shared<Md5Hasher>();
}

bool Upload::WriteStaysInMemory(size_t size) const {
  return !finished_ && !chunked_ && request_.allow_inline &&
         buffer_.size() + size <= service_->options().inline_threshold_bytes;
}

Status Upload::Write(std::string_view bytes) {
  if (finished_) return FailedPreconditionError("write to a finished upload");
  size_bytes_ += bytes.size();
  if (request_.expected_size && size_bytes_ > *request_.expected_size) {
    Abort();
    return InvalidArgumentError("body is longer than its declared length")
        .WithReason(ErrorReason::kBodyLengthMismatch);
  }
  if (!chunked_) {
    if (request_.allow_inline &&
        buffer_.size() + bytes.size() <= service_->options().inline_threshold_bytes) {
      buffer_.append(bytes);
      return OkStatus();
    }
    Status status = StartChunkedMode();
    if (!status.ok()) {
      Abort();
      return status;
    }
  }
  Status status = AppendChunked(bytes);
  if (!status.ok()) Abort();
  return status;
}

Status Upload::StartChunkedMode() {
  meta::ObjectRecord record = BaseRecord(ObjectState::kWriting);
  RETURN_IF_ERROR(service_->meta_store()->BeginUpload(record));
  chunked_ = true;
  std::string pending = std::move(buffer_);
  buffer_ = std::string();
  return AppendChunked(pending);
}

Status Upload::AppendChunked(std::string_view bytes) {
  const uint64_t chunk_size = service_->options().chunk_size_bytes;
  while (!bytes.empty()) {
    if (chunk_.capacity() < chunk_size) chunk_ = AlignedBuffer(chunk_size);
    const size_t take =
        static_cast<size_t>(std::min<uint64_t>(bytes.size(), chunk_size - chunk_.size()));
    // Hashed as it is gathered, so that a chunk is hashed before anything is written: a
    // chunk already stored is never written again.
    const std::string_view piece = bytes.substr(0, take);
    hasher_.UpdateAndCopy(piece, chunk_.end());  // one pass over the bytes for both
    chunk_.grow(take);
    if (md5_hasher_) md5_hasher_->Update(piece);
    bytes.remove_prefix(take);
    if (chunk_.size() == chunk_size) RETURN_IF_ERROR(SealChunk());
  }
  return OkStatus();
}

Status Upload::SealChunk() {
  SealedChunk chunk;
  chunk.digest = hasher_.FinishPart();
  chunk.bytes = std::move(chunk_);
  chunk_ = buffers_.Take();
  if (defer_storage_) {
    sealed_.push_back(std::move(chunk));
    return OkStatus();
  }
  Status status = ingest_.Store(chunk);
  buffers_.Give(std::move(chunk.bytes));
  return status;
}

std::vector<SealedChunk> Upload::TakeSealedChunks() {
  std::vector<SealedChunk> taken = std::move(sealed_);
  sealed_.clear();
  return taken;
}

Status Upload::StoreChunks(std::vector<SealedChunk> chunks) {
  return ingest_.StoreAll(std::move(chunks), &buffers_);
}

meta::ObjectRecord Upload::BaseRecord(ObjectState state) {
  meta::ObjectRecord record;
  record.id = id_;
  record.tenant = request_.tenant;
  record.namespace_name = request_.namespace_name;
  record.key = request_.key;
  record.state = state;
  record.storage_class = request_.storage_class;
  record.content_type = request_.content_type;
  record.user_metadata = request_.user_metadata;
  const TimestampMs now = service_->clock()->NowMs();
  record.created_at_ms = now;
  record.updated_at_ms = now;
  return record;
}

meta::ObjectRecord Upload::FinalRecord() {
  meta::ObjectRecord record = BaseRecord(ObjectState::kCommitted);
  record.size_bytes = size_bytes_;
  if (!chunked_) {  // the inline bytes are hashed here, in one piece
    hasher_.Update(buffer_);
    if (md5_hasher_) md5_hasher_->Update(buffer_);
  }
  record.content_hash = hasher_.FinishWhole();
  if (md5_hasher_) {
    record.etag = HexEncode(md5_hasher_->Finish());
  } else if (md5_digest_) {
    record.etag = HexEncode(*md5_digest_);
  } else {
    record.etag = EtagWithoutMd5(record.content_hash);
  }
  return record;
}

Result<meta::CommitResult> Upload::Commit() {
  if (finished_) return FailedPreconditionError("upload already finished");
  if (declined_record_) {  // verified by CommitAsync
    meta::ObjectRecord record = std::move(*declined_record_);
    declined_record_.reset();
    finished_ = true;
    return service_->meta_store()->PutCommitted(record, {}, service_->clock()->NowMs());
  }
  Status sized = CheckSize();
  if (!sized.ok()) {
    Abort();
    return sized;
  }
  if (chunked_) {
    Status status = chunk_.empty() ? OkStatus() : SealChunk();
    if (status.ok()) status = StoreChunks(TakeSealedChunks());
    if (!status.ok()) {
      Abort();
      return status;
    }
  }
  meta::ObjectRecord record = FinalRecord();
  Status verified = CheckDigests(record);
  if (!verified.ok()) {
    Abort();
    return verified;
  }
  const TimestampMs now = service_->clock()->NowMs();
  if (!chunked_) {
    record.inline_data = std::move(buffer_);
    finished_ = true;
    return service_->meta_store()->PutCommitted(record, {}, now);
  }
  Status synced = ingest_.SyncDirectories();
  if (!synced.ok()) {
    Abort();
    return synced;
  }
  auto result = service_->meta_store()->CommitUpload(id_, record, now);
  if (!result.ok()) {
    Abort();
    return result.status();
  }
  finished_ = true;
  return result;
}

bool Upload::CommitAsync(std::function<void(Result<meta::CommitResult>)> done) {
  if (finished_ || chunked_) return false;
  // Aborting an upload that is still in memory touches neither disk nor store.
  Status sized = CheckSize();
  if (!sized.ok()) {
    Abort();
    done(std::move(sized));
    return true;
  }
  meta::ObjectRecord record = FinalRecord();
  Status verified = CheckDigests(record);
  if (!verified.ok()) {
    Abort();
    done(std::move(verified));
    return true;
  }
  record.inline_data = std::move(buffer_);
  const TimestampMs now = service_->clock()->NowMs();
  if (!service_->meta_store()->PutCommittedAsync(std::move(record), now, std::move(done))) {
    // Declined (the record is left as it was). The hashes are final now, so Commit
    // commits this verified record on the blocking path.
    declined_record_ = std::move(record);
    return false;
  }
  finished_ = true;
  return true;
}

Status Upload::CheckSize() const {
  if (request_.expected_size && size_bytes_ != *request_.expected_size) {
    return InvalidArgumentError("body ended after " + std::to_string(size_bytes_) + " of " +
                                std::to_string(*request_.expected_size) + " declared bytes")
        .WithReason(ErrorReason::kBodyLengthMismatch);
  }
  return OkStatus();
}

Status Upload::CheckDigests(const meta::ObjectRecord& record) const {
  if (md5_taken_ && !md5_digest_) {
    return InternalError("upload " + id_.ToString() + " reached commit without its MD5");
  }
  if (request_.expected_md5 && HexEncode(*request_.expected_md5) != record.etag) {
    return InvalidArgumentError("the Content-MD5 you specified did not match what was received")
        .WithReason(ErrorReason::kBadDigest);
  }
  if (request_.expected_sha256 && *request_.expected_sha256 != record.content_hash) {
    return InvalidArgumentError("content SHA-256 is " + record.content_hash.ToHex() +
                                ", not the declared " + request_.expected_sha256->ToHex())
        .WithReason(ErrorReason::kContentHashMismatch);
  }
  return OkStatus();
}

void Upload::Abort() {
  if (finished_) return;
  finished_ = true;
  buffer_ = std::string();
  chunk_ = AlignedBuffer();
  sealed_.clear();
  // If this fails (database down), GC reaps the WRITING row after the grace period.
  if (chunked_) {
    service_->meta_store()->AbortUpload(id_, service_->clock()->NowMs()).IgnoreError();
  }
}

// ---- ObjectReader ---------------------------------------------------------------------

ObjectReader::ObjectReader(ObjectService* service, meta::ObjectRecord object,
                           std::vector<meta::ChunkRef> chunks)
    : service_(service),
      object_(std::move(object)),
      chunks_(std::move(chunks)),
      owner_("object " + object_.id.ToString()) {
  uint64_t offset = 0;
  for (const auto& chunk : chunks_) {
    chunk_offsets_.push_back(offset);
    offset += chunk.size_bytes;
  }
}

Status ObjectReader::Damaged(size_t index, ChunkDamage damage, const std::string& why) {
  const meta::ChunkRef& chunk = chunks_[index];
  if (open_index_ == index && open_cached_) {
    // The cache's copy is wrong, which says nothing of the store's file: the caller drops
    // the copy (DropCachedCopy) and reads the store's file instead.
    return DataLossError("the cached copy of chunk " + chunk.digest.ToHex() +
                         " failed verification (" + why + ")");
  }
  uint64_t IntegrityCounters::*counter = &IntegrityCounters::checksum_mismatch;
  bool quarantine = true;
  switch (damage) {
    case ChunkDamage::kMissing:
      counter = &IntegrityCounters::missing;
      quarantine = false;
      break;
    case ChunkDamage::kWrongSize:
      counter = &IntegrityCounters::short_file;
      break;
    case ChunkDamage::kUnreadable:
      counter = &IntegrityCounters::unreadable;
      quarantine = false;  // an I/O error may pass; the bytes were not shown to be wrong
      break;
    case ChunkDamage::kWrongContent:
      break;
  }
  const int fd = (open_index_ == index && open_file_) ? open_file_->NativeHandle() : -1;
  service_->ReportDamagedChunk(object_.storage_class, chunk.digest, owner_, why, counter,
                               quarantine, fd);
  // Whatever happens next, this reader never serves this chunk from the file it holds.
  if (open_index_ == index) CloseChunkFile();
  chunks_[index].damaged_ms = std::max<TimestampMs>(1, service_->clock()->NowMs());
  return DataLossError("chunk " + chunk.digest.ToHex() + " of " + owner_ +
                       " failed verification (" + why + "); it was not served");
}

void ObjectReader::CloseChunkFile() {
  open_file_.reset();
  open_index_ = SIZE_MAX;
  open_cached_ = false;
}

Status ObjectReader::OpenChunkFile(size_t index, bool from_store) {
  if (index == open_index_ && !(from_store && open_cached_)) return OkStatus();
  CloseChunkFile();
  const meta::ChunkRef& chunk = chunks_[index];
  chunks::ChunkCache* cache = service_->options().read_cache;
  const bool use_cache = cache != nullptr && !from_store && store_only_.count(index) == 0;
  if (use_cache) {
    if (auto copy = cache->OpenCopy(chunk.digest, chunk.size_bytes)) {
      open_file_ = std::move(copy);
      open_index_ = index;
      open_cached_ = true;
      return OkStatus();
    }
  }
  auto file = service_->chunk_store()->OpenChunk(object_.storage_class, chunk.digest);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kNotFound)
      return Damaged(index, ChunkDamage::kMissing, "missing file");
    return Damaged(index, ChunkDamage::kUnreadable, "unreadable: " + file.status().message());
  }
  open_file_ = std::move(file).value();
  open_index_ = index;
  if (use_cache) {
    // Copied once, hashed on the way; served from the copy from now on. A store file that
    // does not hash to its name is not copied, and the reads below report it.
    auto copy = cache->Fill(chunk.digest, chunk.size_bytes, *open_file_);
    if (copy.ok()) {
      open_file_ = std::move(copy).value();
      open_cached_ = true;
    }
  }
  return OkStatus();
}

bool ObjectReader::DropCachedCopy(size_t index) {
  if (open_index_ != index || !open_cached_) return false;
  service_->options().read_cache->Drop(chunks_[index].digest);
  store_only_.insert(index);
  CloseChunkFile();
  return true;
}

Status ObjectReader::VerifyWholeChunk(size_t index, bool from_store) {
  RETURN_IF_ERROR(OpenChunkFile(index, from_store));
  Status verified = VerifyOpenChunk(index);
  if (!verified.ok() && DropCachedCopy(index)) {
    RETURN_IF_ERROR(OpenChunkFile(index, /*from_store=*/true));
    verified = VerifyOpenChunk(index);
  }
  return verified;
}

Status ObjectReader::VerifyOpenChunk(size_t index) {
  meta::ChunkRef& chunk = chunks_[index];
  if (!block_) block_.reset(new char[kChecksumBlockBytes]);
  block_chunk_ = SIZE_MAX;  // the buffer is scratch here
  Sha256Hasher hasher;
  std::string checksums;
  uint64_t offset = 0;
  while (offset < chunk.size_bytes) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(kChecksumBlockBytes, chunk.size_bytes - offset));
    auto got = open_file_->ReadAt(offset, want, block_.get());
    if (!got.ok())
      return Damaged(index, ChunkDamage::kUnreadable, "unreadable: " + got.status().message());
    if (*got != want) return Damaged(index, ChunkDamage::kWrongSize, "short file");
    const std::string_view block(block_.get(), want);
    hasher.Update(block);
    const uint32_t crc = Crc32c(block);
    for (int shift = 0; shift < 32; shift += 8)
      checksums.push_back(static_cast<char>(crc >> shift));
    offset += want;
  }
  // A longer file is as wrong as a shorter one.
  auto size = open_file_->Size();
  if (size.ok() && *size != chunk.size_bytes)
    return Damaged(index, ChunkDamage::kWrongSize, "size differs from record");
  if (hasher.Finish() != chunk.digest)
    return Damaged(index, ChunkDamage::kWrongContent, "content does not hash to its name");
  chunk.block_checksums = std::move(checksums);
  return OkStatus();
}

Result<size_t> ObjectReader::LoadBlock(size_t index, uint64_t block, char* destination) {
  Result<size_t> loaded = LoadBlockOnce(index, block, destination);
  if (!loaded.ok() && DropCachedCopy(index)) return LoadBlockOnce(index, block, destination);
  return loaded;
}

Result<size_t> ObjectReader::LoadBlockOnce(size_t index, uint64_t block, char* destination) {
  meta::ChunkRef& chunk = chunks_[index];
  if (chunk.damaged_ms != 0) {
    return DataLossError("chunk " + chunk.digest.ToHex() + " of " + owner_ +
                         " is damaged; it is not served");
  }
  if (!BlockChecksumsFit(chunk.block_checksums, chunk.size_bytes)) {
    // Stored before block checksums were kept (or the record is odd): verify the SHA-256
    // once, which also computes the checksums the rest of this read uses.
    RETURN_IF_ERROR(VerifyWholeChunk(index));
  }
  RETURN_IF_ERROR(OpenChunkFile(index));
  const uint64_t start = block * kChecksumBlockBytes;
  const size_t want =
      static_cast<size_t>(std::min<uint64_t>(kChecksumBlockBytes, chunk.size_bytes - start));
  auto got = open_file_->ReadAt(start, want, destination);
  if (!got.ok())
    return Damaged(index, ChunkDamage::kUnreadable, "unreadable: " + got.status().message());
  if (*got != want)
    return Damaged(index, ChunkDamage::kWrongSize, "short file at block " + std::to_string(block));
  if (Crc32c(std::string_view(destination, want)) !=
      BlockChecksumAt(chunk.block_checksums, block)) {
    return Damaged(index, ChunkDamage::kWrongContent,
                   "checksum mismatch in block " + std::to_string(block));
  }
  return want;
}

Status ObjectReader::Prepare(uint64_t offset, uint64_t length, bool read_ahead) {
  if (object_.inline_data || length == 0) return OkStatus();
  const uint64_t end = offset + length;
  for (size_t index = 0; index < chunks_.size(); ++index) {
    const uint64_t chunk_start = chunk_offsets_[index];
    const uint64_t chunk_end = chunk_start + chunks_[index].size_bytes;
    if (chunk_end <= offset || chunk_start >= end) continue;
    meta::ChunkRef& chunk = chunks_[index];
    if (chunk.damaged_ms != 0) {
      // Marked by an earlier failure; an upload of the same content may have installed a
      // fresh copy since. Only a full verification lets it be served again. While there is
      // no file the failure is already known: it is not reported again (a client asking
      // over and over must not cost a log line and a database write each time).
      auto present = service_->chunk_store()->Contains(object_.storage_class, chunk.digest);
      if (present.ok() && !*present) {
        return DataLossError("chunk " + chunk.digest.ToHex() + " of " + owner_ +
                             " is damaged and has no copy yet");
      }
      const TimestampMs mark = chunk.damaged_ms;
      chunk.damaged_ms = 0;
      Status verified = VerifyWholeChunk(index, /*from_store=*/true);
      if (!verified.ok()) {
        chunk.damaged_ms = mark;
        return verified;
      }
      service_->meta_store()
          ->SetChunkDamaged(object_.storage_class, chunk.digest, 0)
          .IgnoreError();  // the mark only costs a re-verification next time
      continue;
    }
    auto size = service_->chunk_store()->file_system()->FileSize(
        service_->chunk_store()->PathOf(object_.storage_class, chunk.digest));
    if ((!size.ok() || *size != chunk.size_bytes) && open_index_ == index && open_cached_) {
      // What follows is about the store's file: a cache copy held open must not take the
      // blame (Damaged) for it.
      CloseChunkFile();
    }
    if (!size.ok()) {
      if (size.status().code() == StatusCode::kNotFound)
        return Damaged(index, ChunkDamage::kMissing, "missing file");
      return Damaged(index, ChunkDamage::kUnreadable, "unreadable: " + size.status().message());
    }
    if (*size != chunk.size_bytes) {
      RETURN_IF_ERROR(OpenChunkFile(index, /*from_store=*/true));  // the quarantine moves it
      return Damaged(index, ChunkDamage::kWrongSize,
                     "size " + std::to_string(*size) + " differs from the recorded " +
                         std::to_string(chunk.size_bytes));
    }
  }
  if (read_ahead) {
    auto it = std::upper_bound(chunk_offsets_.begin(), chunk_offsets_.end(), offset);
    const size_t index = static_cast<size_t>(it - chunk_offsets_.begin()) - 1;
    if (index >= chunks_.size()) return DataLossError("object offset past its chunks");
    if (!block_) block_.reset(new char[kChecksumBlockBytes]);
    const uint64_t block = (offset - chunk_offsets_[index]) / kChecksumBlockBytes;
    block_chunk_ = SIZE_MAX;
    ASSIGN_OR_RETURN(block_length_, LoadBlock(index, block, block_.get()));
    block_chunk_ = index;
    block_index_ = block;
  }
  return OkStatus();
}

Result<size_t> ObjectReader::Read(uint64_t offset, size_t length, char* buffer) {
  if (offset >= object_.size_bytes || length == 0) return size_t{0};
  length = static_cast<size_t>(std::min<uint64_t>(length, object_.size_bytes - offset));
  if (object_.inline_data) {
    // Inline bytes were checked against the object's hashes when it was committed and
    // live inside the metadata store's own page checksumming (fsck checks its integrity).
    const std::string& data = *object_.inline_data;
    if (offset >= data.size()) return DataLossError("inline data shorter than object size");
    size_t n = std::min<size_t>(length, data.size() - offset);
    std::copy_n(data.data() + offset, n, buffer);
    return n;
  }
  // The chunk holding `offset`.
  auto it = std::upper_bound(chunk_offsets_.begin(), chunk_offsets_.end(), offset);
  size_t index = static_cast<size_t>(it - chunk_offsets_.begin()) - 1;
  if (index >= chunks_.size()) return DataLossError("object offset past its chunks");
  const uint64_t within = offset - chunk_offsets_[index];
  const uint64_t block = within / kChecksumBlockBytes;
  const uint64_t block_start = block * kChecksumBlockBytes;
  const uint64_t block_size =
      std::min<uint64_t>(kChecksumBlockBytes, chunks_[index].size_bytes - block_start);
  if (within == block_start && length >= block_size &&
      !(block_chunk_ == index && block_index_ == block)) {
    // A whole block: straight into the caller's buffer, verified there. Nothing is handed
    // out before the check, so a failure leaves no wrong byte behind.
    return LoadBlock(index, block, buffer);
  }
  if (block_chunk_ != index || block_index_ != block) {
    if (!block_) block_.reset(new char[kChecksumBlockBytes]);
    block_chunk_ = SIZE_MAX;
    ASSIGN_OR_RETURN(block_length_, LoadBlock(index, block, block_.get()));
    block_chunk_ = index;
    block_index_ = block;
  }
  const size_t from = static_cast<size_t>(within - block_start);
  if (from >= block_length_) return DataLossError("read past a verified block");
  const size_t n = std::min(length, block_length_ - from);
  std::copy_n(block_.get() + from, n, buffer);
  return n;
}

// ---- ObjectService --------------------------------------------------------------------

ObjectService::ObjectService(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                             platform::Clock* clock, ObjectServiceOptions options)
    : meta_store_(meta_store),
      chunk_store_(chunk_store),
      clock_(clock),
      options_(options),
      health_(meta_store, chunk_store, clock) {}

Result<std::unique_ptr<Upload>> ObjectService::BeginUpload(UploadRequest request) {
  if (request.internal_namespace && request.namespace_name.starts_with('.')) {
    RETURN_IF_ERROR(ValidateName("tenant", request.tenant));
    RETURN_IF_ERROR(ValidateName("namespace", request.namespace_name.substr(1)));
    RETURN_IF_ERROR(ValidateKey(request.key));
  } else {
    RETURN_IF_ERROR(ValidateLocation(request.tenant, request.namespace_name, request.key));
  }
  if (request.content_type.size() > 256) {
    return InvalidArgumentError("content type is longer than 256 bytes");
  }
  return std::unique_ptr<Upload>(new Upload(this, std::move(request)));
}

Result<meta::ObjectRecord> ObjectService::Stat(const std::string& tenant, const ObjectId& id) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  return meta_store_->GetObject(tenant, id);
}

Result<meta::ObjectRecord> ObjectService::StatByKey(const std::string& tenant,
                                                    const std::string& namespace_name,
                                                    const std::string& key) {
  RETURN_IF_ERROR(ValidateLocation(tenant, namespace_name, key));
  return meta_store_->GetObjectByKey(tenant, namespace_name, key);
}

Result<std::unique_ptr<ObjectReader>> ObjectService::OpenReader(const meta::ObjectRecord& object) {
  std::vector<meta::ChunkRef> chunks;
  if (!object.inline_data) {
    ASSIGN_OR_RETURN(chunks, meta_store_->GetChunks(object.id));
  }
  return std::unique_ptr<ObjectReader>(new ObjectReader(this, object, std::move(chunks)));
}

std::unique_ptr<ObjectReader> ObjectService::OpenChunkListReader(const ObjectId& owner,
                                                                 StorageClass storage_class,
                                                                 std::vector<meta::ChunkRef> chunks,
                                                                 std::string owner_name) {
  meta::ObjectRecord record;
  record.id = owner;
  record.storage_class = storage_class;
  for (const meta::ChunkRef& chunk : chunks) record.size_bytes += chunk.size_bytes;
  auto reader =
      std::unique_ptr<ObjectReader>(new ObjectReader(this, std::move(record), std::move(chunks)));
  if (!owner_name.empty()) reader->owner_ = std::move(owner_name);
  return reader;
}

void ObjectService::ReportDamagedChunk(StorageClass storage_class, const Digest& digest,
                                       const std::string& owner, const std::string& why,
                                       uint64_t IntegrityCounters::*counter, bool quarantine,
                                       int checked_fd) {
  health_.ReportDamaged(storage_class, digest, owner, why, counter, quarantine, checked_fd);
}

Result<meta::ObjectRecord> ObjectService::Delete(const std::string& tenant, const ObjectId& id) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  return meta_store_->DeleteObject(tenant, id, clock_->NowMs());
}

Result<meta::ObjectRecord> ObjectService::DeleteByKey(const std::string& tenant,
                                                      const std::string& namespace_name,
                                                      const std::string& key) {
  ASSIGN_OR_RETURN(meta::ObjectRecord object, StatByKey(tenant, namespace_name, key));
  return meta_store_->DeleteObject(tenant, object.id, clock_->NowMs());
}

Result<meta::ListPage> ObjectService::List(const meta::ListRequest& request) {
  RETURN_IF_ERROR(ValidateName("tenant", request.tenant));
  RETURN_IF_ERROR(ValidateName("namespace", request.namespace_name));
  if (request.limit < 1 || request.limit > 10000) {
    return InvalidArgumentError("limit must be between 1 and 10000");
  }
  if (request.prefix.size() > kMaxKeyBytes || request.start_after.size() > kMaxKeyBytes) {
    return InvalidArgumentError("prefix or cursor is longer than a key can be");
  }
  return meta_store_->ListObjects(request);
}

Result<UsageReport> ObjectService::Usage(const std::string& tenant, bool physical) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  std::vector<meta::UsageRow> rows;
  if (physical) {
    ASSIGN_OR_RETURN(rows, meta_store_->Usage(tenant));
  } else {
    ASSIGN_OR_RETURN(std::vector<meta::UsageCounterRow> counts, meta_store_->UsageCounts(tenant));
    for (const meta::UsageCounterRow& count : counts) {
      meta::UsageRow row;
      row.namespace_name = count.namespace_name;
      row.storage_class = count.storage_class;
      row.objects = static_cast<uint64_t>(std::max<int64_t>(0, count.objects));
      row.logical_bytes = static_cast<uint64_t>(std::max<int64_t>(0, count.logical_bytes));
      rows.push_back(std::move(row));
    }
  }
  UsageReport report;
  report.tenant = tenant;
  for (auto& row : rows) {
    // Internal namespaces (multipart bookkeeping) are not the user's namespaces: their
    // parts are reported apart, and the upload records hold no bytes.
    if (row.namespace_name.starts_with('.')) {
      if (row.namespace_name == kMultipartPartsNamespace) {
        report.incomplete_multipart_parts += row.objects;
        report.incomplete_multipart_logical_bytes += row.logical_bytes;
        report.incomplete_multipart_physical_bytes += row.physical_bytes;
      }
      continue;
    }
    report.total_objects += row.objects;
    report.total_logical_bytes += row.logical_bytes;
    report.total_physical_bytes += row.physical_bytes;
    report.rows.push_back(std::move(row));
  }
  return report;
}

Result<meta::CommitResult> ObjectService::Copy(const meta::ObjectRecord& source,
                                               const CopyRequest& request) {
  RETURN_IF_ERROR(ValidateLocation(request.tenant, request.namespace_name, request.key));
  std::vector<meta::ChunkRef> chunks;
  if (!source.inline_data) {
    ASSIGN_OR_RETURN(chunks, meta_store_->GetChunks(source.id));
  }
  meta::ObjectRecord copy = source;
  copy.id = platform::NewObjectId();
  copy.tenant = request.tenant;
  copy.namespace_name = request.namespace_name;
  copy.key = request.key;
  copy.state = ObjectState::kCommitted;
  if (request.content_type) copy.content_type = *request.content_type;
  if (request.user_metadata) {
    // Replacing metadata keeps the source's tags unless the replacement carries its own.
    // Stored headers come with the replacement; the part layout stays with the bytes.
    std::map<std::string, std::string> merged = *request.user_metadata;
    bool replaces_tags = false;
    for (const auto& [name, value] : merged) replaces_tags |= name.rfind(kTagPrefix, 0) == 0;
    for (const auto& [name, value] : source.user_metadata) {
      if ((!replaces_tags && name.rfind(kTagPrefix, 0) == 0) || name == kPartLayoutField ||
          name == kChecksumField) {
        merged[name] = value;
      }
    }
    copy.user_metadata = std::move(merged);
  }
  // The copy is a new object, not the completion of the source's multipart upload.
  std::erase_if(copy.user_metadata, [](const auto& entry) {
    return entry.first.rfind("\x01upload:", 0) == 0 && entry.first != kPartLayoutField;
  });
  const TimestampMs now = clock_->NowMs();
  copy.created_at_ms = now;
  copy.updated_at_ms = now;
  // The references are taken in the commit transaction; the source's own references keep
  // the chunks alive until then (a concurrently deleted source leaves them within grace).
  return meta_store_->PutCommitted(copy, chunks, now);
}

Result<meta::ObjectRecord> ObjectService::UpdateUserMetadata(
    const std::string& tenant, const ObjectId& id, std::map<std::string, std::string> metadata) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  return meta_store_->UpdateUserMetadata(tenant, id, metadata, clock_->NowMs());
}

Status ObjectService::CreateNamespace(const std::string& tenant, const std::string& name) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  RETURN_IF_ERROR(ValidateName("namespace", name));
  return meta_store_->CreateNamespace({tenant, name, clock_->NowMs()});
}

Result<std::vector<meta::NamespaceRecord>> ObjectService::ListNamespaces(
    const std::string& tenant) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  ASSIGN_OR_RETURN(auto all, meta_store_->ListNamespaces(tenant));
  std::vector<meta::NamespaceRecord> visible;
  for (auto& record : all) {
    if (!record.name.empty() && record.name[0] != '.') visible.push_back(std::move(record));
  }
  return visible;
}

Result<meta::NamespaceRecord> ObjectService::GetNamespace(const std::string& tenant,
                                                          const std::string& name) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  RETURN_IF_ERROR(ValidateName("namespace", name));
  return meta_store_->GetNamespace(tenant, name);
}

Status ObjectService::DeleteNamespace(const std::string& tenant, const std::string& name) {
  RETURN_IF_ERROR(ValidateName("tenant", tenant));
  RETURN_IF_ERROR(ValidateName("namespace", name));
  return meta_store_->DeleteNamespace(tenant, name);
}

}  // namespace cairn::objects
