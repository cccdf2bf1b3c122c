#pragma once
// The S3 backend: a repository in a bucket (s3://bucket/prefix), over HTTP(S) with SigV4.
// Whole objects are one PUT (create-only: If-None-Match: *, and a HEAD first for servers that
// ignore it), verified by Content-MD5 and the ETag the server answers; streamed objects (base
// backup chunks) are multipart uploads, invisible until CompleteMultipartUpload and aborted
// when abandoned; reads are ranged GETs; listing pages past 1,000 keys.
#include <chrono>
#include <memory>
#include <string>

#include "common/base/error.hpp"
#include "common/core/storage/s3/credentials.hpp"
#include "common/core/storage/s3/http.hpp"
#include "common/core/storage/s3/sigv4.hpp"
#include "common/core/storage/storage.hpp"

namespace walvault {

struct S3Settings {
  std::string bucket;
  std::string prefix;                  // "" or "a/b": keys live below it
  std::string endpoint;                // scheme://host[:port]; https unless http is given
  std::string region = "us-east-1";
  bool path_style = false;             // s3-uri-style = path: endpoint/bucket/key
  std::string storage_class;           // "" : the bucket's default
  s3::Credentials credentials;         // used when credentials_file is empty
  std::string credentials_file;        // AWS shared-credentials format, re-read when it changes
  s3::HttpOptions http;
  std::size_t part_size = 8u << 20;    // multipart part size (S3's minimum is 5 MiB)
  // The start-up sweep aborts open uploads at least this old: no chunk upload takes hours,
  // and a younger one may be another walvaultd's (a standby's sidecar) in progress.
  std::chrono::seconds abandoned_upload_age{6 * 3600};
};

Result<std::unique_ptr<Storage>> open_s3_storage(S3Settings settings);

// The sweep's rule: an upload whose Initiated time (ListMultipartUploads) is at least `age`
// before `now_us`; one whose time cannot be read is left alone.
bool upload_is_abandoned(const std::string& initiated, std::int64_t now_us, std::chrono::seconds age);

}  // namespace walvault
