#include "gc/collector.h"

#include <algorithm>
#include <map>
#include <set>

namespace cairn::gc {
namespace {

std::string Label(StorageClass storage_class, const Digest& digest) {
  return std::string(StorageClassName(storage_class)) + "/" + digest.ToHex();
}

Status SweepTempFiles(chunks::ChunkStore* chunk_store, TimestampMs cutoff_ms, GcStats* stats) {
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(auto temp_files, chunk_store->ListTempFiles(storage_class));
    for (const auto& temp : temp_files) {
      if (temp.modified_ms >= cutoff_ms) continue;
      // A locked file belongs to a live writer; skip it.
      if (chunk_store->RemoveTempFile(temp.path).ok()) ++stats->deleted_temp_files;
    }
  }
  return OkStatus();
}

Status SweepOrphans(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                    TimestampMs cutoff_ms, GcStats* stats) {
  // Files are listed before rows: an upload creates the row before the file, so a file
  // seen here whose row is missing below really has no row (or is younger than cutoff).
  std::map<StorageClass, std::vector<Digest>> files;
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(files[storage_class], chunk_store->ListChunks(storage_class));
  }
  ASSIGN_OR_RETURN(auto rows, meta_store->ListChunks());
  std::set<std::pair<StorageClass, Digest>> known;
  for (const auto& row : rows) known.insert({row.storage_class, row.digest});
  for (const auto& [storage_class, digests] : files) {
    for (const Digest& digest : digests) {
      if (known.count({storage_class, digest})) continue;
      auto modified = chunk_store->ChunkModifiedTime(storage_class, digest);
      if (!modified.ok() || *modified >= cutoff_ms) continue;
      if (chunk_store->Remove(storage_class, digest).ok()) ++stats->deleted_orphan_files;
    }
  }
  return OkStatus();
}

}  // namespace

Result<GcStats> RunGc(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                      platform::Clock* clock, const GcOptions& options) {
  GcStats stats;
  const TimestampMs now = clock->NowMs();
  const TimestampMs cutoff = now - options.grace_ms;
  // Bounded loops: each pass handles at most batch_size rows; stop when a pass is short.
  constexpr int kMaxBatches = 100000;
  for (int i = 0; i < kMaxBatches; ++i) {
    ASSIGN_OR_RETURN(uint64_t n, meta_store->ReapStalledUploads(
                                     now - std::max(options.grace_ms, options.stalled_upload_ms),
                                     options.batch_size, clock->NowMs()));
    stats.reaped_uploads += n;
    if (n < options.batch_size) break;
  }
  for (int i = 0; i < kMaxBatches; ++i) {
    ASSIGN_OR_RETURN(uint64_t n, meta_store->PurgeDeletedObjects(cutoff, options.batch_size));
    stats.purged_objects += n;
    if (n < options.batch_size) break;
  }
  // Chunks whose count reached zero before the cutoff. The cutoff is re-read per batch
  // from the same `now` so a chunk freed during this run is left for the next one.
  for (int i = 0; i < kMaxBatches; ++i) {
    ASSIGN_OR_RETURN(auto removed,
                     meta_store->CollectGarbageChunks(
                         cutoff, options.batch_size, [chunk_store](const meta::ChunkRecord& chunk) {
                           return chunk_store->Remove(chunk.storage_class, chunk.digest);
                         }));
    for (const auto& chunk : removed) stats.deleted_chunk_bytes += chunk.size_bytes;
    stats.deleted_chunks += removed.size();
    if (removed.size() < options.batch_size) break;
  }
  RETURN_IF_ERROR(SweepTempFiles(chunk_store, cutoff, &stats));
  if (options.sweep_orphans) {
    RETURN_IF_ERROR(SweepOrphans(meta_store, chunk_store, cutoff, &stats));
  }
  return stats;
}

bool FsckReport::ok() const {
  return missing_chunks.empty() && corrupt_chunks.empty() && orphaned_chunks.empty() &&
         wrong_ref_counts.empty() && stale_temp_files.empty() && stray_files.empty();
}

Result<FsckReport> RunFsck(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                           platform::Clock* clock, const FsckOptions& options) {
  FsckReport report;
  const TimestampMs now = clock->NowMs();
  const TimestampMs cutoff = now - options.grace_ms;

  std::map<StorageClass, std::set<Digest>> files;
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(auto digests, chunk_store->ListChunks(storage_class, &report.stray_files));
    files[storage_class] = std::set<Digest>(digests.begin(), digests.end());
  }
  ASSIGN_OR_RETURN(auto references, meta_store->CheckReferences());

  std::map<StorageClass, std::vector<Digest>> lost;
  std::set<std::pair<StorageClass, Digest>> rows;
  bool counts_wrong = false;
  for (const auto& ref : references) {
    if (ref.has_chunk_row) rows.insert({ref.storage_class, ref.digest});
    const std::string label = Label(ref.storage_class, ref.digest);
    if (ref.recorded_ref_count != ref.actual_ref_count || !ref.has_chunk_row) {
      report.wrong_ref_counts.push_back(label + ": recorded " +
                                        std::to_string(ref.recorded_ref_count) + ", actual " +
                                        std::to_string(ref.actual_ref_count));
      counts_wrong = true;
    }
    // Unreferenced chunks are GC's business; chunks referenced only by uploads that have
    // not committed (in flight, or crashed and awaiting the stalled-upload reaper) may
    // not have their file yet. Neither is a loss.
    if (ref.committed_ref_count == 0) continue;
    ++report.chunks_checked;
    if (!files[ref.storage_class].count(ref.digest)) {
      report.missing_chunks.push_back(label);
      lost[ref.storage_class].push_back(ref.digest);
      continue;
    }
    if (options.verify_content) {
      auto digest = chunk_store->Rehash(ref.storage_class, ref.digest);
      if (!digest.ok() || *digest != ref.digest) {
        report.corrupt_chunks.push_back(label);
        lost[ref.storage_class].push_back(ref.digest);
      }
    }
  }
  std::vector<std::pair<StorageClass, Digest>> orphans;
  for (const auto& [storage_class, digests] : files) {
    for (const Digest& digest : digests) {
      if (!rows.count({storage_class, digest})) {
        report.orphaned_chunks.push_back(Label(storage_class, digest));
        orphans.push_back({storage_class, digest});
      }
    }
  }
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(auto temp_files, chunk_store->ListTempFiles(storage_class));
    for (const auto& temp : temp_files) {
      if (temp.modified_ms < cutoff) report.stale_temp_files.push_back(temp.path);
    }
  }
  ASSIGN_OR_RETURN(auto counts, meta_store->CountObjects());
  for (const auto& row : counts) report.objects_checked += row.objects;

  if (!options.repair) return report;

  // Repair order: objects that lost data become DELETING (their bytes cannot be served
  // correctly); corrupt files are removed; counts are recomputed; orphans and stale temp
  // files are removed.
  for (auto& [storage_class, digests] : lost) {
    ASSIGN_OR_RETURN(auto dropped,
                     meta_store->DropObjectsWithChunks(storage_class, digests, clock->NowMs()));
    for (const ObjectId& id : dropped) {
      report.repairs.push_back("deleted object " + id.ToString() + " (lost data)");
    }
  }
  for (const std::string& label : report.corrupt_chunks) {
    StorageClass storage_class =
        label.rfind("hot/", 0) == 0 ? StorageClass::kHot : StorageClass::kCold;
    auto digest = Digest::FromHex(label.substr(label.find('/') + 1));
    if (digest.ok() && chunk_store->Remove(storage_class, *digest).ok()) {
      report.repairs.push_back("removed corrupt chunk " + label);
    }
  }
  if (counts_wrong || !lost.empty()) {
    ASSIGN_OR_RETURN(uint64_t changed, meta_store->RepairReferences(clock->NowMs()));
    report.repairs.push_back("recomputed " + std::to_string(changed) + " reference counts");
  }
  for (const auto& [storage_class, digest] : orphans) {
    if (chunk_store->Remove(storage_class, digest).ok()) {
      report.repairs.push_back("removed orphaned chunk " + Label(storage_class, digest));
    }
  }
  for (const std::string& path : report.stale_temp_files) {
    if (chunk_store->RemoveTempFile(path).ok()) {
      report.repairs.push_back("removed stale temp file " + path);
    }
  }
  for (const std::string& path : report.stray_files) {
    report.repairs.push_back("left stray file " + path + " for a human to inspect");
  }
  return report;
}

}  // namespace cairn::gc
