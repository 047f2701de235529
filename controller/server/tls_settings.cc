#include "controller/server/tls_settings.h"

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/ssl.h>

#include <memory>

namespace strait::controller {
namespace {

struct Free {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
  void operator()(BIO* bio) const { BIO_free(bio); }
  void operator()(CONF* conf) const { NCONF_free(conf); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

// The defaults OpenSSL applies to each new TLS context (SSL_CTX_new): "system_default" of
// the ssl_conf module, as an openssl.cnf would name it.
constexpr char kConfig[] =
    "strait = strait_init\n"
    "[strait_init]\n"
    "ssl_conf = strait_ssl\n"
    "[strait_ssl]\n"
    "system_default = strait_tls\n"
    "[strait_tls]\n"
    "NumTickets = 0\n";

bool sends_tickets() {
  Owned<SSL_CTX> probe(SSL_CTX_new(TLS_server_method()));
  return probe == nullptr || SSL_CTX_get_num_tickets(probe.get()) != 0;
}

}  // namespace

bool turn_off_session_tickets() {
  // The system configuration first (OpenSSL reads it once), so that it cannot replace this.
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr);
  if (!sends_tickets()) return true;
  {
    Owned<SSL_CTX> probe(SSL_CTX_new(TLS_server_method()));
    if (probe == nullptr || SSL_CTX_config(probe.get(), "system_default") == 1) return false;
  }
  Owned<BIO> text(BIO_new_mem_buf(kConfig, sizeof kConfig - 1));
  Owned<CONF> conf(NCONF_new(nullptr));
  long error_line = 0;
  if (text == nullptr || conf == nullptr || NCONF_load_bio(conf.get(), text.get(), &error_line) <= 0) return false;
  OPENSSL_load_builtin_modules();
  if (CONF_modules_load(conf.get(), "strait", 0) <= 0) return false;
  return !sends_tickets();
}

}  // namespace strait::controller
