// A byte buffer whose storage starts on a page boundary, so that a full chunk can be written
// with direct I/O (O_DIRECT needs the address, length and file offset aligned to the device's
// block size). Fixed capacity, move-only.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

namespace cairn {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t capacity)
      : data_(Allocate(capacity)), capacity_(capacity ? RoundUp(capacity) : 0) {}
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::move(other.data_)), size_(other.size_), capacity_(other.capacity_) {
    other.size_ = other.capacity_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    data_ = std::move(other.data_);
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.size_ = other.capacity_ = 0;
    return *this;
  }

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  std::string_view view() const { return std::string_view(data_.get(), size_); }
  operator std::string_view() const { return view(); }  // NOLINT: used like a string

  // Appends; the caller keeps within capacity().
  void append(std::string_view bytes) {
    std::memcpy(data_.get() + size_, bytes.data(), bytes.size());
    size_ += bytes.size();
  }
  // For writers that fill the free space themselves: where the next byte goes, and how
  // many bytes they wrote there.
  char* end() { return data_.get() + size_; }
  void grow(size_t count) { size_ += count; }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  static size_t RoundUp(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }
  static char* Allocate(size_t capacity) {
    if (capacity == 0) return nullptr;
    void* p = std::aligned_alloc(kAlignment, RoundUp(capacity));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<char*>(p);
  }

  std::unique_ptr<char, Free> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace cairn
