#include "gc/collector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace cairn::gc {
namespace {

void Report(const ProgressFn& on_progress, const char* phase, uint64_t done, uint64_t total = 0) {
  if (on_progress) on_progress(Progress{phase, done, total});
}

// Within a phase, every this many items (a pass over a million chunks reports ~4,000 times).
constexpr uint64_t kProgressEvery = 256;

std::string Label(StorageClass storage_class, const Digest& digest) {
  return std::string(StorageClassName(storage_class)) + "/" + digest.ToHex();
}

// How many chunk files one pass may remove or quarantine: `fraction` of the store, at
// least one (so a small store still gets collected), unlimited with the explicit flag.
uint64_t DeletionBudget(uint64_t store_size, double fraction, bool allow_mass_delete) {
  if (allow_mass_delete) return std::numeric_limits<uint64_t>::max();
  const double share = std::max(0.0, fraction) * static_cast<double>(store_size);
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::floor(share)));
}

std::string CapAdvice(const char* command) {
  return std::string("check the metadata store and the storage roots, then run `") + command +
         " --allow-mass-delete` (or raise --gc-max-delete-fraction)";
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

// Quarantined files have had the grace period for an operator to look at or restore them
// (fsck --repair restores an intact copy of a missing chunk from there).
Status PurgeQuarantine(chunks::ChunkStore* chunk_store, TimestampMs cutoff_ms, GcStats* stats) {
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(auto files, chunk_store->ListQuarantine(storage_class));
    for (const auto& file : files) {
      if (file.quarantined_ms >= cutoff_ms) continue;
      if (chunk_store->RemoveQuarantined(file.path).ok()) ++stats->deleted_quarantined_files;
    }
  }
  return OkStatus();
}

Status SweepOrphans(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                    TimestampMs now_ms, TimestampMs cutoff_ms, uint64_t store_size,
                    const GcOptions& options, GcStats* stats) {
  // Files are listed before rows: an upload creates the row before the file, so a file
  // seen here whose row is missing below really has no row (or is younger than cutoff).
  std::map<StorageClass, std::vector<Digest>> files;
  uint64_t file_count = 0;
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(files[storage_class], chunk_store->ListChunks(storage_class));
    file_count += files[storage_class].size();
  }
  ASSIGN_OR_RETURN(auto rows, meta_store->ListChunks());
  std::set<std::pair<StorageClass, Digest>> known;
  for (const auto& row : rows) known.insert({row.storage_class, row.digest});
  std::vector<std::pair<StorageClass, Digest>> orphans;
  for (const auto& [storage_class, digests] : files) {
    for (const Digest& digest : digests) {
      if (known.count({storage_class, digest})) continue;
      auto modified = chunk_store->ChunkModifiedTime(storage_class, digest);
      if (!modified.ok() || *modified >= cutoff_ms) continue;
      orphans.push_back({storage_class, digest});
    }
  }
  if (orphans.empty()) return OkStatus();
  uint64_t budget = DeletionBudget(std::max(store_size, file_count), options.max_delete_fraction,
                                   options.allow_mass_delete);
  budget -= std::min(budget, stats->deleted_chunks);
  if (orphans.size() > budget) {
    // All or nothing: that many files unknown to the metadata means the metadata is wrong
    // (restored from an old snapshot, another store's), not that they are garbage.
    stats->capped = std::to_string(orphans.size()) + " of " + std::to_string(file_count) +
                    " chunk files have no metadata row, more than the " + std::to_string(budget) +
                    " this pass may still take, so none was "
                    "quarantined: " +
                    CapAdvice("cairn gc");
    stats->orphans_left_by_cap = orphans.size();
    return OkStatus();
  }
  for (const auto& [storage_class, digest] : orphans) {
    auto moved = chunk_store->Quarantine(storage_class, digest, now_ms);
    if (!moved.ok()) continue;  // removed meanwhile, or the next pass tries again
    ++stats->quarantined_orphan_files;
    stats->quarantined.push_back(Label(storage_class, digest) + " -> " + *moved);
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
  Report(options.on_progress, "reaping stalled uploads", 0);
  for (int i = 0; i < kMaxBatches; ++i) {
    ASSIGN_OR_RETURN(uint64_t n, meta_store->ReapStalledUploads(
                                     now - std::max(options.grace_ms, options.stalled_upload_ms),
                                     options.batch_size, clock->NowMs()));
    stats.reaped_uploads += n;
    Report(options.on_progress, "reaping stalled uploads", stats.reaped_uploads);
    if (n < options.batch_size) break;
  }
  Report(options.on_progress, "purging deleted objects", 0);
  for (int i = 0; i < kMaxBatches; ++i) {
    ASSIGN_OR_RETURN(uint64_t n, meta_store->PurgeDeletedObjects(cutoff, options.batch_size));
    stats.purged_objects += n;
    Report(options.on_progress, "purging deleted objects", stats.purged_objects);
    if (n < options.batch_size) break;
  }
  ASSIGN_OR_RETURN(uint64_t store_size, meta_store->CountChunks());
  uint64_t budget =
      DeletionBudget(store_size, options.max_delete_fraction, options.allow_mass_delete);
  // Chunks whose count reached zero before the cutoff. The cutoff is re-read per batch
  // from the same `now` so a chunk freed during this run is left for the next one.
  Report(options.on_progress, "removing unreferenced chunks", 0);
  for (int i = 0; i < kMaxBatches; ++i) {
    const uint32_t limit = static_cast<uint32_t>(std::min<uint64_t>(options.batch_size, budget));
    if (limit == 0) {
      // Unreferenced chunks are garbage by the metadata's own account; the cap only
      // spreads a mass removal over several passes (and a wrong metadata store over time
      // an operator can notice).
      stats.capped = "stopped after removing " + std::to_string(stats.deleted_chunks) +
                     " unreferenced chunks, the cap for one pass (" +
                     std::to_string(options.max_delete_fraction) + " of " +
                     std::to_string(store_size) + "); the next pass continues, or " +
                     CapAdvice("cairn gc");
      break;
    }
    ASSIGN_OR_RETURN(auto removed,
                     meta_store->CollectGarbageChunks(
                         cutoff, limit, [chunk_store](const meta::ChunkRecord& chunk) {
                           return chunk_store->Remove(chunk.storage_class, chunk.digest);
                         }));
    for (const auto& chunk : removed) stats.deleted_chunk_bytes += chunk.size_bytes;
    stats.deleted_chunks += removed.size();
    Report(options.on_progress, "removing unreferenced chunks", stats.deleted_chunks);
    budget -= std::min<uint64_t>(budget, removed.size());
    if (removed.size() < limit) break;
  }
  // Purges and reaps above appended counter changes; fold them while here. A failed fold
  // is reported, not fatal: it leaves the counters right, only longer to sum.
  if (Status folded = meta_store->CompactUsageCounters(); !folded.ok()) {
    stats.usage_fold_error = folded.ToString();
  }
  Report(options.on_progress, "sweeping temp files and the quarantine", 0);
  RETURN_IF_ERROR(SweepTempFiles(chunk_store, cutoff, &stats));
  RETURN_IF_ERROR(PurgeQuarantine(chunk_store, cutoff, &stats));
  if (options.sweep_orphans && options.store_identity_verified && stats.capped.empty()) {
    Report(options.on_progress, "looking for orphaned chunk files", 0);
    RETURN_IF_ERROR(
        SweepOrphans(meta_store, chunk_store, now, cutoff, store_size, options, &stats));
  }
  return stats;
}

bool FsckReport::ok() const {
  return metadata_problems.empty() && missing_chunks.empty() && corrupt_chunks.empty() &&
         orphaned_chunks.empty() && wrong_ref_counts.empty() && wrong_usage_counters.empty() &&
         stale_temp_files.empty() && stray_files.empty();
}

Result<FsckReport> RunFsck(meta::MetaStore* meta_store, chunks::ChunkStore* chunk_store,
                           platform::Clock* clock, const FsckOptions& options) {
  FsckReport report;
  const TimestampMs now = clock->NowMs();
  const TimestampMs cutoff = now - options.grace_ms;

  Report(options.on_progress, "checking the metadata store", 0);
  {
    auto problems = meta_store->CheckIntegrity();
    if (!problems.ok()) {
      report.metadata_problems.push_back("cannot check the metadata store: " +
                                         problems.status().ToString());
    } else {
      report.metadata_problems = std::move(problems).value();
    }
  }
  if (!report.metadata_problems.empty()) {
    if (options.repair) {
      report.repairs.push_back(
          "repaired nothing: the metadata store itself is damaged, so every other finding "
          "would be wrong; restore it (e.g. `cairn meta load` of the newest snapshot into an "
          "empty store) and run fsck again");
    }
    return report;
  }

  Report(options.on_progress, "listing chunk files", 0);
  std::map<StorageClass, std::set<Digest>> files;
  uint64_t file_count = 0;
  for (StorageClass storage_class : kAllStorageClasses) {
    ASSIGN_OR_RETURN(auto digests, chunk_store->ListChunks(storage_class, &report.stray_files));
    files[storage_class] = std::set<Digest>(digests.begin(), digests.end());
    file_count += files[storage_class].size();
  }
  Report(options.on_progress, "counting references", 0);
  ASSIGN_OR_RETURN(auto references, meta_store->CheckReferences());

  std::map<StorageClass, std::vector<Digest>> missing;
  std::map<StorageClass, std::vector<Digest>> corrupt;
  std::set<std::pair<StorageClass, Digest>> rows;
  bool counts_wrong = false;
  const char* const checking = options.verify_content ? "re-hashing chunks" : "checking chunks";
  uint64_t seen = 0;
  Report(options.on_progress, checking, 0, references.size());
  for (const auto& ref : references) {
    if (++seen % kProgressEvery == 0) {
      Report(options.on_progress, checking, seen, references.size());
    }
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
    // not have their file yet. Neither is a loss. A generic owner's list names stored
    // chunks, so its references need the file as a committed object's do.
    if (ref.committed_ref_count == 0 && ref.owner_ref_count == 0) continue;
    ++report.chunks_checked;
    if (!files[ref.storage_class].count(ref.digest)) {
      report.missing_chunks.push_back(label);
      missing[ref.storage_class].push_back(ref.digest);
      continue;
    }
    if (options.verify_content) {
      auto digest = chunk_store->Rehash(ref.storage_class, ref.digest);
      if (!digest.ok() || *digest != ref.digest) {
        report.corrupt_chunks.push_back(label);
        corrupt[ref.storage_class].push_back(ref.digest);
      }
    }
  }
  Report(options.on_progress, checking, references.size(), references.size());
  for (const auto* lost : {&missing, &corrupt}) {
    const char* what = lost == &missing ? "missing" : "corrupt";
    for (const auto& [storage_class, digests] : *lost) {
      for (const Digest& digest : digests) {
        ASSIGN_OR_RETURN(auto ids, meta_store->FindObjectsWithChunks(storage_class, {digest}));
        for (const ObjectId& id : ids) {
          report.affected_objects.push_back(id.ToString() + ": " + Label(storage_class, digest) +
                                            " " + what);
        }
        ASSIGN_OR_RETURN(auto owners, meta_store->FindOwnersWithChunks(storage_class, {digest}));
        for (const meta::ChunkOwner& owner : owners) {
          report.affected_owners.push_back(owner.kind + ":" + owner.id + ": " +
                                           Label(storage_class, digest) + " " + what);
        }
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
      if (temp.modified_ms >= cutoff) continue;
      // A live writer's or a mount's spare (made ahead, idle since): not stale.
      Result<bool> in_use = chunk_store->TempFileInUse(temp.path);
      if (in_use.ok() && *in_use) continue;
      if (!in_use.ok() && in_use.status().code() == StatusCode::kNotFound) continue;
      report.stale_temp_files.push_back(temp.path);
    }
  }
  Report(options.on_progress, "counting objects", 0);
  ASSIGN_OR_RETURN(auto counts, meta_store->CountObjects());
  for (const auto& row : counts) report.objects_checked += row.objects;
  Report(options.on_progress, "recounting usage", 0);
  ASSIGN_OR_RETURN(report.wrong_usage_counters, meta_store->CheckUsageCounters());

  if (!options.repair) return report;
  if (!report.wrong_usage_counters.empty()) {
    ASSIGN_OR_RETURN(uint64_t changed, meta_store->RepairUsageCounters());
    report.repairs.push_back("recounted the usage of " + std::to_string(changed) +
                             " (tenant, namespace, class) groups");
  }

  // Repair never deletes a chunk file and never drops an object or an owner's reference
  // (counts are recomputed from objects plus owners). A corrupt file is
  // quarantined (a read then fails cleanly instead of meeting bad bytes); the objects
  // using it stay recorded, and the next upload of the same content writes the chunk
  // again and heals them. A missing chunk whose intact copy sits in the quarantine
  // (an orphan sweep or a repair that was wrong about it) is put back.
  for (const auto& [storage_class, digests] : corrupt) {
    for (const Digest& digest : digests) {
      auto moved = chunk_store->Quarantine(storage_class, digest, clock->NowMs());
      if (moved.ok()) {
        report.repairs.push_back("quarantined corrupt chunk " + Label(storage_class, digest) +
                                 " to " + *moved +
                                 " (its objects stay recorded; uploading the same content "
                                 "again heals them)");
      }
    }
  }
  for (const auto& [storage_class, digests] : missing) {
    ASSIGN_OR_RETURN(auto quarantined, chunk_store->ListQuarantine(storage_class));
    // Newest first: the last copy taken out of service is the likeliest good one.
    std::sort(quarantined.begin(), quarantined.end(),
              [](const auto& a, const auto& b) { return a.quarantined_ms > b.quarantined_ms; });
    for (const Digest& digest : digests) {
      for (const auto& file : quarantined) {
        if (file.digest != digest) continue;
        auto restored = chunk_store->RestoreFromQuarantine(storage_class, file);
        if (restored.ok() && *restored) {
          report.repairs.push_back("restored missing chunk " + Label(storage_class, digest) +
                                   " from " + file.path);
          break;
        }
      }
    }
  }
  if (counts_wrong) {
    ASSIGN_OR_RETURN(uint64_t changed, meta_store->RepairReferences(clock->NowMs()));
    report.repairs.push_back("recomputed " + std::to_string(changed) + " reference counts");
  }
  if (!orphans.empty()) {
    ASSIGN_OR_RETURN(uint64_t chunk_rows, meta_store->CountChunks());
    const uint64_t budget = DeletionBudget(std::max(chunk_rows, file_count),
                                           options.max_delete_fraction, options.allow_mass_delete);
    if (!options.store_identity_verified) {
      report.repairs.push_back("left " + std::to_string(orphans.size()) +
                               " orphaned chunks: the store identity was not checked");
    } else if (orphans.size() > budget) {
      report.repairs.push_back("left " + std::to_string(orphans.size()) + " orphaned chunks of " +
                               std::to_string(file_count) + " chunk files, more than the cap of " +
                               std::to_string(budget) + ": " + CapAdvice("cairn fsck --repair"));
    } else {
      for (const auto& [storage_class, digest] : orphans) {
        auto moved = chunk_store->Quarantine(storage_class, digest, clock->NowMs());
        if (moved.ok()) {
          report.repairs.push_back("quarantined orphaned chunk " + Label(storage_class, digest) +
                                   " to " + *moved);
        }
      }
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
