/* Fuzz target: the daemon's socket framing (lib/daemon/proto.h), as the daemon reads a
 * client's bytes: a hello, then frames; every REQ payload is decoded, and a decoded
 * request must encode back to the same frame.
 * Invariants: no crash, no leak, no undefined behaviour.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const uint8_t *frame, size_t flen, const struct zsd_req *r)
{
    struct qs_buf b;
    qs_buf_init(&b, 2 * ZSD_FRAME_MAX);
    if (zsd_req_append(&b, r->argc, r->argv, r->cwd, r->flags) != 0 || b.len != flen ||
        memcmp(qs_buf_ptr(&b), frame, flen) != 0)
        abort();
    qs_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < ZSD_HELLO_LEN)
        return 0;
    if (zsd_hello_check(data) != 0) {
        qs_err_clear();
        return 0;
    }
    size_t off = ZSD_HELLO_LEN;
    for (;;) {
        enum zsd_type type;
        const uint8_t *payload;
        size_t len, used;
        int rc = zsd_frame_next(data + off, size - off, &type, &payload, &len, &used);
        if (rc) {
            qs_err_clear();
            break;
        }
        if (type == ZSD_REQ) {
            struct zsd_req r;
            if (zsd_req_decode(payload, len, &r) == 0) {
                if (r.flags > 0xFF)
                    abort();
                check_roundtrip(data + off, used, &r);
                zsd_req_free(&r);
            } else {
                qs_err_clear();
            }
        }
        off += used;
    }
    return 0;
}
