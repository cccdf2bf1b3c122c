#pragma once
// Where the S3 backend's credentials come from: fixed ones (s3-key / s3-key-secret or the AWS_*
// variables), or an s3-credentials-file that is re-read whenever it changes, so a rotated
// Kubernetes secret (a new file swapped in under the mount) takes effect without a restart.
#include <sys/types.h>

#include <ctime>
#include <mutex>
#include <string>

#include "common/base/error.hpp"
#include "common/core/storage/s3/sigv4.hpp"

namespace walvault::s3 {

// The AWS shared-credentials format: aws_access_key_id, aws_secret_access_key and optionally
// aws_session_token, in the [default] section (or before any section, or in the only one).
// Comments start with '#' or ';'. The message of an error never holds the secret.
Result<Credentials> parse_credentials_file(const std::string& text, const std::string& path);

class CredentialSource {
 public:
  // Fixed credentials.
  explicit CredentialSource(Credentials fixed);
  // From `path`: read now (an error: the file is missing, unreadable, readable by others or
  // incomplete), then again whenever its inode, size or modification time changes.
  static Result<CredentialSource> from_file(std::string path);

  CredentialSource(CredentialSource&& other) noexcept;

  // The credentials to sign the next request with. A file that changed but cannot be used
  // (half-written during a rotation, say) keeps the last good ones, with a warning once.
  Credentials current();
  const std::string& path() const { return m_path; }

 private:
  CredentialSource() = default;
  struct Stamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    timespec modified{};
    bool operator==(const Stamp& other) const;
  };
  Result<void> reload();  // under m_mutex, or before the source is shared

  std::string m_path;  // empty: fixed
  std::mutex m_mutex;
  Credentials m_credentials;
  Stamp m_stamp;
  bool m_warned = false;
};

}  // namespace walvault::s3
