/* The JSON path of `StixMapper._map` for incident bundles, compiled.
 *
 * `mapper.py` is the reference: this file writes, byte for byte, what `StixMapper._map(victim, True)`
 * writes when the primary object is an incident and no sector, intrusion set or country objects are
 * made (the connector's defaults; TLP markings and the dataset label are handled). Every other option
 * set runs the Python. The tests map every sample, every option set it serves and arbitrary victims
 * (hypothesis) both ways and compare the texts, so the two cannot drift apart unnoticed.
 *
 * Why it exists: mapping is most of a replay's CPU, spread over some two hundred lines of Python at a
 * fraction of a microsecond each, plus eight uuid5 ids per bundle. Here the assembly, the JSON string
 * escaping (encode_basestring_ascii's rules) and the SHA-1 of the ids are C; case and whitespace
 * (lower, strip) and non-ASCII id keys still go through the same Python functions as the reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* SHA-1 (FIPS 180-4), for uuid5                                                                   */
/* ---------------------------------------------------------------------------------------------- */

typedef struct {
    uint32_t h[5];
    uint64_t length; /* bytes hashed */
    uint8_t block[64];
    size_t used;
} Sha1;

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_compress(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = ROL(a, 5) + f + e + k + w[i];
        e = d; d = c; c = ROL(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_CODE 1

/* The same compression with the x86 SHA extensions (Intel's reference layout): several times faster
 * than the portable C. Used when the CPU has them (checked once, at import). */
#define SHA_GROUP(i, E_IN, E_OUT)                                                                          \
    E_IN = _mm_sha1nexte_epu32(E_IN, msg[(i) % 4]);                                                        \
    E_OUT = abcd;                                                                                          \
    abcd = _mm_sha1rnds4_epu32(abcd, E_IN, (i) / 5);                                                       \
    if ((i) >= 1 && (i) <= 16) msg[((i) + 3) % 4] = _mm_sha1msg1_epu32(msg[((i) + 3) % 4], msg[(i) % 4]);   \
    if ((i) >= 2 && (i) <= 17) msg[((i) + 2) % 4] = _mm_xor_si128(msg[((i) + 2) % 4], msg[(i) % 4]);        \
    if ((i) >= 3 && (i) <= 18) msg[((i) + 1) % 4] = _mm_sha1msg2_epu32(msg[((i) + 1) % 4], msg[(i) % 4]);

__attribute__((target("sha,sse4.1"))) static void sha1_compress_ni(uint32_t h[5], const uint8_t *p) {
    const __m128i mask = _mm_set_epi64x(0x0001020304050607ULL, 0x08090a0b0c0d0e0fULL);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B);
    __m128i e0 = _mm_set_epi32((int)h[4], 0, 0, 0), e1;
    const __m128i abcd_save = abcd, e0_save = e0;
    __m128i msg[4];
    for (int i = 0; i < 4; i++) msg[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
    e0 = _mm_add_epi32(e0, msg[0]);
    e1 = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e0, 0);
    SHA_GROUP(1, e1, e0) SHA_GROUP(2, e0, e1) SHA_GROUP(3, e1, e0) SHA_GROUP(4, e0, e1)
    SHA_GROUP(5, e1, e0) SHA_GROUP(6, e0, e1) SHA_GROUP(7, e1, e0) SHA_GROUP(8, e0, e1)
    SHA_GROUP(9, e1, e0) SHA_GROUP(10, e0, e1) SHA_GROUP(11, e1, e0) SHA_GROUP(12, e0, e1)
    SHA_GROUP(13, e1, e0) SHA_GROUP(14, e0, e1) SHA_GROUP(15, e1, e0) SHA_GROUP(16, e0, e1)
    SHA_GROUP(17, e1, e0) SHA_GROUP(18, e0, e1) SHA_GROUP(19, e1, e0)
    e0 = _mm_sha1nexte_epu32(e0, e0_save);
    abcd = _mm_add_epi32(abcd, abcd_save);
    _mm_storeu_si128((__m128i *)h, _mm_shuffle_epi32(abcd, 0x1B));
    h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}

static int cpu_has_sha_ni(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 29))) return 0; /* SHA */
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & (1u << 19)) && (c & (1u << 9)); /* SSE4.1, SSSE3 */
}
#endif

static void (*compress)(uint32_t h[5], const uint8_t *p) = sha1_compress;

static void sha1_init(Sha1 *s) {
    s->h[0] = 0x67452301; s->h[1] = 0xEFCDAB89; s->h[2] = 0x98BADCFE; s->h[3] = 0x10325476; s->h[4] = 0xC3D2E1F0;
    s->length = 0;
    s->used = 0;
}

static void sha1_update(Sha1 *s, const uint8_t *p, size_t n) {
    s->length += n;
    while (n) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take; p += take; n -= take;
        if (s->used == 64) { compress(s->h, s->block); s->used = 0; }
    }
}

static void sha1_final(Sha1 *s, uint8_t out[20]) {
    uint64_t bits = s->length * 8;
    uint8_t pad = 0x80, zero = 0, len[8];
    sha1_update(s, &pad, 1);
    while (s->used != 56) sha1_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, len, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* SHA-256 (FIPS 180-4), for the digest stored beside each bundle                                  */
/* ---------------------------------------------------------------------------------------------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_blocks(uint32_t h[8], const uint8_t *p, size_t blocks) {
    for (; blocks; blocks--, p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
}

#ifdef HAVE_SHA_NI_CODE
/* The same with the x86 SHA extensions (the layout of Intel's reference code: the state as ABEF and
 * CDGH, four rounds per step, the message schedule computed four words at a time). */
__attribute__((target("sha,sse4.1"))) static void sha256_blocks_ni(uint32_t h[8], const uint8_t *p, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1); /* CDAB */
    __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B); /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                                 /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                                      /* CDGH */
    for (; blocks; blocks--, p += 64) {
        const __m128i abef = state0, cdgh = state1;
        __m128i msg[4], m;
        for (int g = 0; g < 16; g++) {
            if (g < 4) msg[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), mask);
            m = _mm_add_epi32(msg[g % 4], _mm_loadu_si128((const __m128i *)&K256[4 * g]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, m);
            if (g >= 3 && g <= 14) {
                __m128i next = _mm_add_epi32(msg[(g + 1) % 4], _mm_alignr_epi8(msg[g % 4], msg[(g + 3) % 4], 4));
                msg[(g + 1) % 4] = _mm_sha256msg2_epu32(next, msg[g % 4]);
            }
            state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(m, 0x0E));
            if (g >= 1 && g <= 12) msg[(g + 3) % 4] = _mm_sha256msg1_epu32(msg[(g + 3) % 4], msg[g % 4]);
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);       /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);    /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0); /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], state0);
    _mm_storeu_si128((__m128i *)&h[4], state1);
}
#endif

static void (*sha256_compress)(uint32_t h[8], const uint8_t *p, size_t blocks) = sha256_blocks;

/* The SHA-256 of p[0:n] as 64 lower-case hex digits: what hashlib.sha256(...).hexdigest() gives. */
static void sha256_hex(const uint8_t *p, size_t n, char out[64],
                       void (*blocks)(uint32_t h[8], const uint8_t *p, size_t blocks)) {
    static const char hex[] = "0123456789abcdef";
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t last[128] = {0};
    size_t full = n / 64, rest = n % 64, tail = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    blocks(h, p, full);
    memcpy(last, p + 64 * full, rest);
    last[rest] = 0x80;
    for (int i = 0; i < 8; i++) last[tail - 1 - i] = (uint8_t)(bits >> (8 * i));
    blocks(h, last, tail / 64);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) out[8 * i + j] = hex[h[i] >> (28 - 4 * j) & 15];
}

/* ---------------------------------------------------------------------------------------------- */
/* An ASCII text buffer                                                                            */
/* ---------------------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    Py_ssize_t length, capacity;
} Text;

static int reserve(Text *t, Py_ssize_t n);

static int put(Text *t, const char *s, Py_ssize_t n) {
    if (reserve(t, n)) return -1;
    memcpy(t->p + t->length, s, (size_t)n);
    t->length += n;
    return 0;
}

#define PUT(t, literal) put((t), (literal), (Py_ssize_t)(sizeof(literal) - 1))

/* An ASCII str as it is (ids, and what encode_basestring_ascii returned). */
static int put_ascii(Text *t, PyObject *s) {
    if (!PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s)) {
        PyErr_SetString(PyExc_TypeError, "_fastmap: expected an ASCII str");
        return -1;
    }
    return put(t, (const char *)PyUnicode_1BYTE_DATA(s), PyUnicode_GET_LENGTH(s));
}

/* ---------------------------------------------------------------------------------------------- */
/* The mapper                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    int skip_empty_victim, site_indicator, hash_indicator, dataset_label;
    PyObject *confidence_json;   /* str */
    PyObject *omr;               /* str: '"object_marking_refs":[...],' or '' */
    PyObject *author_json;       /* str */
    PyObject *marking_json;      /* str or None */
    PyObject *fingerprint;       /* str */
    PyObject *placeholders;      /* frozenset of str */
    PyObject *encode;            /* json.encoder.encode_basestring (mapper._json_str) */
    PyObject *mapped_bundle;     /* the MappedBundle class */
    PyObject *author_id;         /* str */
    PyObject *label;             /* str */
    Sha1 opencti, url, bundle;   /* the three namespaces, hashed */
} Mapper;

static PyObject *s_victim, *s_announcement_date, *s_hashid, *s_leak_link, *s_site, *s_title, *s_sector_given,
    *s_revenue, *s_victim_domain_given, *s_data_types, *s_dataset, *s_victim_domain, *s_description, *s_strip,
    *s_lower, *s_http, *s_backslash, *s_backslash2, *s_quote, *s_backslash_quote;

static void mapper_dealloc(Mapper *self) {
    Py_XDECREF(self->confidence_json); Py_XDECREF(self->omr); Py_XDECREF(self->author_json);
    Py_XDECREF(self->marking_json); Py_XDECREF(self->fingerprint); Py_XDECREF(self->placeholders);
    Py_XDECREF(self->encode); Py_XDECREF(self->mapped_bundle);
    Py_XDECREF(self->author_id); Py_XDECREF(self->label);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int hash_namespace(Sha1 *s, PyObject *bytes) {
    if (!PyBytes_Check(bytes) || PyBytes_GET_SIZE(bytes) != 16) {
        PyErr_SetString(PyExc_ValueError, "_fastmap: a namespace is 16 bytes");
        return -1;
    }
    sha1_init(s);
    sha1_update(s, (const uint8_t *)PyBytes_AS_STRING(bytes), 16);
    return 0;
}

static int mapper_init(Mapper *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"skip_empty_victim", "site_indicator", "hash_indicator", "dataset_label",
                            "confidence_json", "omr", "author_json", "marking_json", "fingerprint", "placeholders",
                            "encode", "mapped_bundle", "author_id", "label",
                            "opencti_namespace", "url_namespace", "bundle_namespace", NULL};
    PyObject *opencti, *url, *bundle;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$ppppUUUOUOOOUUSSS", names, &self->skip_empty_victim,
                                     &self->site_indicator, &self->hash_indicator, &self->dataset_label,
                                     &self->confidence_json, &self->omr, &self->author_json, &self->marking_json,
                                     &self->fingerprint, &self->placeholders, &self->encode,
                                     &self->mapped_bundle, &self->author_id, &self->label, &opencti, &url, &bundle))
        return -1;
    Py_INCREF(self->confidence_json); Py_INCREF(self->omr); Py_INCREF(self->author_json);
    Py_INCREF(self->marking_json); Py_INCREF(self->fingerprint); Py_INCREF(self->placeholders);
    Py_INCREF(self->encode); Py_INCREF(self->mapped_bundle);
    Py_INCREF(self->author_id); Py_INCREF(self->label);
    if (self->marking_json != Py_None && !PyUnicode_Check(self->marking_json)) {
        PyErr_SetString(PyExc_TypeError, "_fastmap: marking_json is a str or None");
        return -1;
    }
    if (hash_namespace(&self->opencti, opencti) || hash_namespace(&self->url, url) ||
        hash_namespace(&self->bundle, bundle))
        return -1;
    return 0;
}

/* Truthiness of a victim field the way `if value:` reads it (str or None in a Victim). */
static int truthy(PyObject *o) { return o == Py_None ? 0 : PyObject_IsTrue(o); }

static PyObject *call_method(PyObject *o, PyObject *name) { return PyObject_CallMethodNoArgs(o, name); }

static int reserve(Text *t, Py_ssize_t n) {
    if (t->length + n <= t->capacity) return 0;
    Py_ssize_t capacity = t->capacity * 2 > t->length + n ? t->capacity * 2 : t->length + n + 256;
    char *p = PyMem_Realloc(t->p, (size_t)capacity);
    if (!p) { PyErr_NoMemory(); return -1; }
    t->p = p; t->capacity = capacity;
    return 0;
}

/* The inside of a JSON string literal for `s`, escaped as json.encoder.encode_basestring_ascii does
 * (`ascii`) or as encode_basestring does (`!ascii`: only for ASCII `s`, where the two differ in DEL). */
static int put_escaped(Text *t, PyObject *s, int ascii) {
    static const char hex[] = "0123456789abcdef";
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "first argument must be a string, not %.80s", Py_TYPE(s)->tp_name);
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (reserve(t, 12 * n)) return -1; /* at most \udXXX\udXXX per code point */
    char *o = t->p + t->length;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= ' ' && (c <= '~' || (!ascii && c == 0x7f)) && c != '\\' && c != '"') { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
            case '\\': *o++ = '\\'; break;
            case '"': *o++ = '"'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                if (c >= 0x10000) {
                    Py_UCS4 high = 0xd800 | ((c - 0x10000) >> 10);
                    *o++ = 'u'; *o++ = hex[high >> 12 & 15]; *o++ = hex[high >> 8 & 15];
                    *o++ = hex[high >> 4 & 15]; *o++ = hex[high & 15]; *o++ = '\\';
                    c = 0xdc00 | ((c - 0x10000) & 0x3ff);
                }
                *o++ = 'u'; *o++ = hex[c >> 12 & 15]; *o++ = hex[c >> 8 & 15]; *o++ = hex[c >> 4 & 15]; *o++ = hex[c & 15];
        }
    }
    t->length = o - t->p;
    return 0;
}

/* encode_basestring_ascii(s), appended: a JSON string as serialize_bundle writes it. */
static int put_json(Text *t, PyObject *s) {
    return PUT(t, "\"") || put_escaped(t, s, 1) || PUT(t, "\"");
}

/* Feed a str to SHA-1 as mapper._uuid5 encodes it: UTF-8, surrogates passed through. */
static int sha1_update_str(Sha1 *sha, PyObject *s) {
    if (PyUnicode_Check(s) && PyUnicode_IS_ASCII(s)) {
        sha1_update(sha, PyUnicode_1BYTE_DATA(s), (size_t)PyUnicode_GET_LENGTH(s));
        return 0;
    }
    PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass");
    if (!b) return -1;
    sha1_update(sha, (const uint8_t *)PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return 0;
}

/* uuid5 as 36 characters from a namespace's state and what was fed after it. */
static void uuid5_finish(Sha1 *s, char out[36]) {
    static const char hex[] = "0123456789abcdef";
    uint8_t d[20];
    char x[32];
    sha1_final(s, d);
    for (int i = 0; i < 16; i++) { x[2 * i] = hex[d[i] >> 4]; x[2 * i + 1] = hex[d[i] & 15]; }
    x[12] = '5';                          /* version */
    x[16] = hex[(d[8] >> 4 & 0x3) | 0x8]; /* RFC 4122 variant */
    memcpy(out, x, 8); out[8] = '-';
    memcpy(out + 9, x + 8, 4); out[13] = '-';
    memcpy(out + 14, x + 12, 4); out[18] = '-';
    memcpy(out + 19, x + 16, 4); out[23] = '-';
    memcpy(out + 24, x + 20, 12);
}

static void uuid5(const Sha1 *namespace, const char *name, size_t length, char out[36]) {
    Sha1 s = *namespace;
    sha1_update(&s, (const uint8_t *)name, length);
    uuid5_finish(&s, out);
}

/* uuid5(namespace, prefix + value) for a str value. */
static int uuid5_prefixed(const Sha1 *ns, const char *prefix, PyObject *value, char out[36]) {
    Sha1 s = *ns;
    sha1_update(&s, (const uint8_t *)prefix, strlen(prefix));
    if (sha1_update_str(&s, value)) return -1;
    uuid5_finish(&s, out);
    return 0;
}

/* uuid5(OpenCTI, prefix + encode_basestring(value) + "}"): identity_id / indicator_id. */
static int json_keyed_id(Mapper *m, const char *prefix, PyObject *value, char out[36]) {
    Sha1 s = m->opencti;
    sha1_update(&s, (const uint8_t *)prefix, strlen(prefix));
    if (PyUnicode_Check(value) && PyUnicode_IS_ASCII(value)) {
        Text e = {NULL, 0, 0};
        if (put_escaped(&e, value, 0)) { PyMem_Free(e.p); return -1; }
        sha1_update(&s, (const uint8_t *)"\"", 1);
        sha1_update(&s, (const uint8_t *)e.p, (size_t)e.length);
        sha1_update(&s, (const uint8_t *)"\"}", 2);
        PyMem_Free(e.p);
    } else {
        PyObject *e = PyObject_CallOneArg(m->encode, value);
        if (!e) return -1;
        int r = sha1_update_str(&s, e);
        Py_DECREF(e);
        if (r) return -1;
        sha1_update(&s, (const uint8_t *)"}", 1);
    }
    uuid5_finish(&s, out);
    return 0;
}

/* What every object but the author opens with: confidence, created, created_by_ref. */
static int put_head(Mapper *m, Text *t, const char *created) {
    return PUT(t, "{\"confidence\":") || put_ascii(t, m->confidence_json) || PUT(t, ",\"created\":\"") ||
           put(t, created, 24) || PUT(t, "\",\"created_by_ref\":\"") || put_ascii(t, m->author_id) || PUT(t, "\",");
}

static int put_relationship(Mapper *m, Text *t, const char *created, const char *type, const char *source,
                            Py_ssize_t source_len, const char *target, Py_ssize_t target_len) {
    char data[512], rid[36];
    int n = snprintf(data, sizeof data, "{\"relationship_type\":\"%s\",\"source_ref\":\"%.*s\",\"target_ref\":\"%.*s\"}",
                     type, (int)source_len, source, (int)target_len, target);
    if (n < 0 || n >= (int)sizeof data) {
        PyErr_SetString(PyExc_ValueError, "_fastmap: relationship id data too long");
        return -1;
    }
    uuid5(&m->opencti, data, (size_t)n, rid);
    return PUT(t, ",") || put_head(m, t, created) || PUT(t, "\"id\":\"relationship--") || put(t, rid, 36) ||
           PUT(t, "\",\"labels\":[\"") || put_ascii(t, m->label) || PUT(t, "\"],\"modified\":\"") || put(t, created, 24) ||
           PUT(t, "\",") || put_ascii(t, m->omr) || PUT(t, "\"relationship_type\":\"") || put(t, type, (Py_ssize_t)strlen(type)) ||
           PUT(t, "\",\"source_ref\":\"") || put(t, source, source_len) || PUT(t, "\",\"spec_version\":\"2.1\",\"target_ref\":\"") ||
           put(t, target, target_len) || PUT(t, "\",\"type\":\"relationship\"}");
}

/* An external reference as mapper._ref_json writes it (description and url may be NULL). */
static int put_ref(Text *t, PyObject *description, const char *source_name, PyObject *url) {
    if (PUT(t, "{")) return -1;
    if (description && (PUT(t, "\"description\":") || put_json(t, description) || PUT(t, ","))) return -1;
    if (PUT(t, "\"source_name\":\"") || put(t, source_name, (Py_ssize_t)strlen(source_name)) || PUT(t, "\"")) return -1;
    if (url && (PUT(t, ",\"url\":") || put_json(t, url))) return -1;
    return PUT(t, "}");
}

/* site if it starts with "http", else "https://" + site (new reference). */
static PyObject *site_url(PyObject *site) {
    int starts = PyUnicode_Tailmatch(site, s_http, 0, PY_SSIZE_T_MAX, -1);
    if (starts < 0) return NULL;
    if (starts) return Py_NewRef(site);
    return PyUnicode_FromFormat("https://%U", site);
}

typedef struct {
    char id[36];       /* uuid part; the object id is "indicator--" + id */
    PyObject *name;    /* str */
    const char *description;
    PyObject *pattern; /* str */
} Indicator;

/* mapper._pattern_literal: `\` and `'` escaped for a STIX pattern string literal (new reference). */
static PyObject *pattern_literal(PyObject *value) {
    if (PyUnicode_FindChar(value, '\\', 0, PY_SSIZE_T_MAX, 1) < 0 && PyUnicode_FindChar(value, '\'', 0, PY_SSIZE_T_MAX, 1) < 0)
        return Py_NewRef(value);
    PyObject *once = PyUnicode_Replace(value, s_backslash, s_backslash2, -1);
    if (!once) return NULL;
    PyObject *twice = PyUnicode_Replace(once, s_quote, s_backslash_quote, -1);
    Py_DECREF(once);
    return twice;
}

/* mapper._is_hex: [0-9a-f]+ */
static int is_hex(PyObject *s) {
    if (!PyUnicode_IS_ASCII(s)) return 0;
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

/* A victim's fields the mapping reads (borrowed references): from a Victim's attributes, or from
 * one row of a batch's columns. */
typedef struct {
    PyObject *name, *day, *hashid, *leak_link, *site, *title, *sector_given, *revenue, *victim_domain_given,
        *data_types, *dataset, *victim_domain, *description;
} Fields;

/* Append the bundle of `f` to `t`: 1 when written (its ids and object count in the out arguments),
 * 0 when the victim is skipped (nothing written), -1 on error (an exception set). */
static int write_bundle(Mapper *m, const Fields *f, Text *t_out, char bundle_id[36], char primary_id[46],
                        int *object_count) {
    PyObject *hashid = NULL, *tmp = NULL, *primary_name = NULL, *labels = NULL, *primary_url = NULL,
             *description = NULL, *site_ref_url = NULL, *domain = NULL, *suffix = NULL;
    PyObject *name = f->name, *day = f->day, *hashid_raw = f->hashid, *link = f->leak_link, *site = f->site,
             *title = f->title, *sector_given = f->sector_given, *revenue = f->revenue, *data_types = f->data_types,
             *dataset = f->dataset, *victim_description = f->description;
    Indicator indicators[2];
    int n_indicators = 0, objects = 1, result = -1;
    Text tt = *t_out, *t = &tt; /* written to t_out only when the bundle is complete */
    Py_ssize_t start = t->length;
    char created[32], first_seen[32], victim_ref[36], uuid_part[36];
    int has_victim_ref = 0;

    if (m->skip_empty_victim) {
        if (name == Py_None) { result = 0; goto done; }
        PyObject *stripped = call_method(name, s_strip);
        if (!stripped) goto done;
        PyObject *lowered = call_method(stripped, s_lower);
        Py_DECREF(stripped);
        if (!lowered) goto done;
        int placeholder = PySet_Contains(m->placeholders, lowered);
        Py_DECREF(lowered);
        if (placeholder < 0) goto done;
        if (placeholder) { result = 0; goto done; }
    }

    /* _day_stamps */
    if (!PyDate_Check(day)) { PyErr_SetString(PyExc_TypeError, "_fastmap: announcement_date is not a date"); goto done; }
    {
        int y = PyDateTime_GET_YEAR(day), mo = PyDateTime_GET_MONTH(day), d = PyDateTime_GET_DAY(day);
        snprintf(created, sizeof created, "%04d-%02d-%02dT00:00:00.000Z", y, mo, d);
        snprintf(first_seen, sizeof first_seen, "%04d-%02d-%02dT00:00:00Z", y, mo, d);
    }

    if (!(tmp = call_method(hashid_raw, s_strip))) goto done;
    if (!(hashid = call_method(tmp, s_lower))) goto done;
    Py_CLEAR(tmp);
    int link_true = truthy(link), site_true = truthy(site);
    if (link_true < 0 || site_true < 0) goto done;

    if (PUT(t, "{\"id\":\"bundle--")) goto done;
    /* The bundle's id is known only at the end: 36 placeholder bytes, filled in then. */
    Py_ssize_t bundle_id_at = t->length;
    if (put(t, "000000000000000000000000000000000000", 36) || PUT(t, "\",\"objects\":[")) goto done;
    if (m->marking_json != Py_None) {
        if (put_ascii(t, m->marking_json) || PUT(t, ",")) goto done;
        objects++;
    }
    if (put_ascii(t, m->author_json)) goto done;

    /* Victim identity */
    int name_true = truthy(name);
    if (name_true < 0) goto done;
    if (name_true) {
        PyObject *lowered = call_method(name, s_lower);
        if (!lowered) goto done;
        PyObject *key = call_method(lowered, s_strip);
        Py_DECREF(lowered);
        if (!key) goto done;
        int r = json_keyed_id(m, "{\"identity_class\":\"organization\",\"name\":", key, victim_ref);
        Py_DECREF(key);
        if (r) goto done;
        has_victim_ref = 1;
        /* "identity--" + victim_ref != AUTHOR_ID */
        const char *author = (const char *)PyUnicode_1BYTE_DATA(m->author_id);
        int is_author = PyUnicode_GET_LENGTH(m->author_id) == 46 && memcmp(author + 10, victim_ref, 36) == 0 &&
                        memcmp(author, "identity--", 10) == 0;
        if (!is_author) {
            int sector_true = truthy(sector_given), revenue_true = truthy(revenue);
            if (sector_true < 0 || revenue_true < 0) goto done;
            if (sector_true && revenue_true)
                description = PyUnicode_FromFormat("Industry sector: %U\nReported revenue: %U", sector_given, revenue);
            else if (sector_true)
                description = PyUnicode_FromFormat("Industry sector: %U", sector_given);
            else if (revenue_true)
                description = PyUnicode_FromFormat("Reported revenue: %U", revenue);
            if ((sector_true || revenue_true) && !description) goto done;

            if (PUT(t, ",") || put_head(m, t, created)) goto done;
            if (description && (PUT(t, "\"description\":") || put_json(t, description) || PUT(t, ","))) goto done;
            int other_site = 0;
            if (site_true) {
                other_site = PyObject_RichCompareBool(site, link, Py_NE);
                if (other_site < 0) goto done;
            }
            if (link_true || other_site) {
                if (PUT(t, "\"external_references\":[")) goto done;
                if (link_true && put_ref(t, title == Py_None ? NULL : title, "dep", link)) goto done;
                if (other_site) {
                    if (!(site_ref_url = site_url(site))) goto done;
                    if ((link_true && PUT(t, ",")) || put_ref(t, NULL, "victim-site", site_ref_url)) goto done;
                }
                if (PUT(t, "],")) goto done;
            }
            if (PUT(t, "\"id\":\"identity--") || put(t, victim_ref, 36) ||
                PUT(t, "\",\"identity_class\":\"organization\",\"labels\":[\"") || put_ascii(t, m->label) ||
                PUT(t, "\"],\"modified\":\"") || put(t, created, 24) || PUT(t, "\",\"name\":") ||
                put_json(t, name) || PUT(t, ",") || put_ascii(t, m->omr) ||
                PUT(t, "\"spec_version\":\"2.1\",\"type\":\"identity\"}"))
                goto done;
            objects++;
        }
    }

    /* Primary object: common parts */
    if (uuid5_prefixed(&m->url, "dep-announcement:", hashid, uuid_part)) goto done;
    if (name_true) {
        primary_name = PyUnicode_FromFormat("DEP announcement - %U", name);
    } else {
        PyObject *given = f->victim_domain_given;
        int given_true = truthy(given);
        if (given_true < 0) goto done;
        primary_name = given_true ? PyUnicode_FromFormat("DEP announcement - %U", given)
                                  : PyUnicode_FromString("DEP announcement - Unknown Victim");
    }
    if (!primary_name) goto done;

    /* A batch's column gives None for a null list; a Victim gives () */
    int types_true = data_types == Py_None ? 0 : PyObject_IsTrue(data_types);
    if (types_true < 0) goto done;
    if (types_true || m->dataset_label) {
        PyObject *set = PySet_New(NULL);
        if (!set) goto done;
        labels = set;
        if (PySet_Add(set, m->label)) goto done;
        if (types_true) { /* a Victim's () or a batch's None has nothing to add */
            PyObject *it = PyObject_GetIter(data_types);
            if (!it) goto done;
            PyObject *data_type;
            while ((data_type = PyIter_Next(it))) {
                int dt_true = truthy(data_type);
                if (dt_true > 0) {
                    PyObject *lowered = call_method(data_type, s_lower);
                    PyObject *label = lowered ? PyUnicode_FromFormat("dep:announcement-type:%U", lowered) : NULL;
                    Py_XDECREF(lowered);
                    if (!label || PySet_Add(set, label)) { Py_XDECREF(label); Py_DECREF(data_type); Py_DECREF(it); goto done; }
                    Py_DECREF(label);
                }
                Py_DECREF(data_type);
                if (dt_true < 0) { Py_DECREF(it); goto done; }
            }
            Py_DECREF(it);
        }
        if (PyErr_Occurred()) goto done;
        if (m->dataset_label) {
            int dataset_true = truthy(dataset);
            if (dataset_true < 0) goto done;
            if (dataset_true) {
                PyObject *label = PyUnicode_FromFormat("dep:dataset:%U", dataset);
                if (!label || PySet_Add(set, label)) { Py_XDECREF(label); goto done; }
                Py_DECREF(label);
            }
        }
        labels = PySequence_List(set);
        Py_DECREF(set);
        if (!labels || PyList_Sort(labels)) goto done;
    }

    /* primary_ref: url from the link, else the site; description from a non-empty title */
    if (link_true) primary_url = Py_NewRef(link);
    else if (site_true && !(primary_url = site_url(site))) goto done;
    int title_true = truthy(title);
    if (title_true < 0) goto done;

    /* Indicators */
    if (!(suffix = name_true ? Py_NewRef(name) : PyUnicode_FromString("unknown victim"))) goto done;
    if (m->site_indicator) {
        domain = f->victim_domain;
        int domain_true = truthy(domain);
        if (domain_true < 0) goto done;
        if (domain_true) {
            Indicator *ind = &indicators[n_indicators];
            PyObject *literal = pattern_literal(domain);
            if (!literal) goto done;
            ind->pattern = PyUnicode_FromFormat("[domain-name:value = '%U']", literal);
            Py_DECREF(literal);
            if (!ind->pattern) goto done;
            n_indicators++;
            ind->description = "Victim domain";
            if (!(ind->name = PyUnicode_FromFormat("Domain associated with %U", suffix))) goto done;
            /* indicator_id strips the pattern: a no-op, it starts with '[' and ends with ']' */
            if (json_keyed_id(m, "{\"pattern\":", ind->pattern, ind->id)) goto done;
        }
    }
    int hashid_true = truthy(hashid);
    if (hashid_true < 0) goto done;
    if (m->hash_indicator && hashid_true) {
        const char *hash_type = NULL;
        Py_ssize_t length = PyUnicode_GET_LENGTH(hashid);
        if (length == 32) hash_type = "MD5";
        else if (length == 40) hash_type = "SHA-1";
        else if (length == 64) hash_type = "SHA-256";
        if (hash_type && is_hex(hashid)) {
            Indicator *ind = &indicators[n_indicators];
            ind->pattern = PyUnicode_FromFormat("[file:hashes.'%s' = '%U']", hash_type, hashid);
            if (!ind->pattern) goto done;
            n_indicators++;
            ind->description = "Hash identifier for tracking";
            if (!(ind->name = PyUnicode_FromFormat("Announcement hash for %U", suffix))) goto done;
            if (json_keyed_id(m, "{\"pattern\":", ind->pattern, ind->id)) goto done;
        }
    }

    /* The incident */
    memcpy(primary_id, "incident--", 10);
    memcpy(primary_id + 10, uuid_part, 36);
    if (PUT(t, ",") || put_head(m, t, created)) goto done;
    if (victim_description != Py_None &&
        (PUT(t, "\"description\":") || put_json(t, victim_description) || PUT(t, ",")))
        goto done;
    if (primary_url || title_true) {
        if (PUT(t, "\"external_references\":[") ||
            put_ref(t, title_true ? title : NULL, "dep", primary_url) || PUT(t, "],"))
            goto done;
    }
    if (PUT(t, "\"first_seen\":\"") || put(t, first_seen, 20) || PUT(t, "\",\"id\":\"") || put(t, primary_id, 46) ||
        PUT(t, "\",\"incident_type\":\"cybercrime\",\"labels\":["))
        goto done;
    if (labels) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(labels); i++)
            if ((i && PUT(t, ",")) || put_json(t, PyList_GET_ITEM(labels, i))) goto done;
    } else if (put_json(t, m->label)) {
        goto done;
    }
    if (PUT(t, "],\"modified\":\"") || put(t, created, 24) || PUT(t, "\",\"name\":") ||
        put_json(t, primary_name) || PUT(t, ",") || put_ascii(t, m->omr) ||
        PUT(t, "\"spec_version\":\"2.1\",\"type\":\"incident\"}"))
        goto done;
    objects++;

    if (has_victim_ref) {
        char target[46];
        memcpy(target, "identity--", 10);
        memcpy(target + 10, victim_ref, 36);
        if (put_relationship(m, t, created, "targets", primary_id, 46, target, 46)) goto done;
        objects++;
    }
    for (int i = 0; i < n_indicators; i++) {
        Indicator *ind = &indicators[i];
        char source[47];
        memcpy(source, "indicator--", 11);
        memcpy(source + 11, ind->id, 36);
        if (PUT(t, ",") || put_head(m, t, created) || PUT(t, "\"description\":\"") ||
            put(t, ind->description, (Py_ssize_t)strlen(ind->description)) || PUT(t, "\",\"id\":\"") ||
            put(t, source, 47) || PUT(t, "\",\"labels\":[\"") || put_ascii(t, m->label) ||
            PUT(t, "\"],\"modified\":\"") || put(t, created, 24) || PUT(t, "\",\"name\":") ||
            put_json(t, ind->name) || PUT(t, ",") || put_ascii(t, m->omr) || PUT(t, "\"pattern\":") ||
            put_json(t, ind->pattern) ||
            PUT(t, ",\"pattern_type\":\"stix\",\"pattern_version\":\"2.1\",\"spec_version\":\"2.1\","
                    "\"type\":\"indicator\",\"valid_from\":\"") ||
            put(t, created, 24) || PUT(t, "\"}"))
            goto done;
        if (put_relationship(m, t, created, "indicates", source, 47, primary_id, 46)) goto done;
        objects += 2;
    }

    /* The bundle */
    {
        char prefix[48];
        memcpy(prefix, primary_id, 46);
        memcpy(prefix + 46, "|", 2);
        if (uuid5_prefixed(&m->bundle, prefix, m->fingerprint, bundle_id)) goto done;
    }
    memcpy(t->p + bundle_id_at, bundle_id, 36);
    if (PUT(t, "],\"type\":\"bundle\"}")) goto done;
    *object_count = objects;
    result = 1;

done:
    Py_XDECREF(hashid); Py_XDECREF(tmp); Py_XDECREF(primary_name); Py_XDECREF(labels); Py_XDECREF(primary_url);
    Py_XDECREF(description); Py_XDECREF(site_ref_url); Py_XDECREF(suffix);
    for (int i = 0; i < n_indicators; i++) { Py_XDECREF(indicators[i].name); Py_XDECREF(indicators[i].pattern); }
    if (result != 1) tt.length = start; /* a skipped or failed victim leaves nothing behind */
    *t_out = tt;
    return result;
}

/* The Fields of a Victim (new references in `f`; `release_fields` drops them). */
static int victim_fields(PyObject *victim, Fields *f) {
    memset(f, 0, sizeof *f);
    return !(f->name = PyObject_GetAttr(victim, s_victim)) || !(f->day = PyObject_GetAttr(victim, s_announcement_date)) ||
                   !(f->hashid = PyObject_GetAttr(victim, s_hashid)) || !(f->leak_link = PyObject_GetAttr(victim, s_leak_link)) ||
                   !(f->site = PyObject_GetAttr(victim, s_site)) || !(f->title = PyObject_GetAttr(victim, s_title)) ||
                   !(f->sector_given = PyObject_GetAttr(victim, s_sector_given)) ||
                   !(f->revenue = PyObject_GetAttr(victim, s_revenue)) ||
                   !(f->victim_domain_given = PyObject_GetAttr(victim, s_victim_domain_given)) ||
                   !(f->data_types = PyObject_GetAttr(victim, s_data_types)) ||
                   !(f->dataset = PyObject_GetAttr(victim, s_dataset)) ||
                   !(f->victim_domain = PyObject_GetAttr(victim, s_victim_domain)) ||
                   !(f->description = PyObject_GetAttr(victim, s_description))
               ? -1
               : 0;
}

static void release_fields(Fields *f) {
    PyObject **p = (PyObject **)f;
    for (size_t i = 0; i < sizeof *f / sizeof(PyObject *); i++) Py_XDECREF(p[i]);
}

static PyObject *map_incident(Mapper *m, PyObject *victim) {
    Fields f;
    Text t = {NULL, 0, 0};
    char bundle_id[44], primary_id[46];
    int objects = 0, written;
    PyObject *result = NULL, *text = NULL;
    memcpy(bundle_id, "bundle--", 8);
    if (victim_fields(victim, &f) || (written = write_bundle(m, &f, &t, bundle_id + 8, primary_id, &objects)) < 0)
        goto done;
    if (!written) { result = Py_NewRef(Py_None); goto done; }
    if (!(text = PyUnicode_New(t.length, 127))) goto done;
    memcpy(PyUnicode_1BYTE_DATA(text), t.p, (size_t)t.length);
    result = PyObject_CallFunction(m->mapped_bundle, "Os#s#i", text, bundle_id, (Py_ssize_t)44, primary_id,
                                   (Py_ssize_t)46, objects);
done:
    release_fields(&f);
    Py_XDECREF(text);
    PyMem_Free(t.p);
    return result;
}

static PyObject *mapper_call(Mapper *self, PyObject *victim) { return map_incident(self, victim); }

/* The victim fields a batch gives, one column each, in the order of `BATCH_FIELDS`. */
#define N_BATCH_FIELDS 13
_Static_assert(sizeof(Fields) == N_BATCH_FIELDS * sizeof(PyObject *), "Fields is the batch's columns");
static const char *batch_fields[N_BATCH_FIELDS] = {
    "victim", "announcement_date", "hashid", "leak_link", "site", "title", "sector_given", "revenue",
    "victim_domain_given", "data_types", "dataset", "victim_domain", "description"};

/* map_columns(columns): the bundles of a batch of victims given by column (lists, `BATCH_FIELDS`
 * order; a null data_types may be None), as Arrow buffers: (rows, offsets, text, bundle_ids,
 * primary_ids, digests, object_counts). `rows` (int32) are the indexes of the victims mapped (the
 * others are skipped), `offsets` (int64) and `text` the bundles' JSON as an Arrow large_string, the
 * ids and digests fixed-width ASCII (44, 46 and 64 bytes each: the digest is the SHA-256 of the text,
 * hex), `object_counts` int32. */
static PyObject *mapper_map_columns(Mapper *self, PyObject *columns) {
    PyObject *lists[N_BATCH_FIELDS], *result = NULL;
    Text text = {NULL, 0, 0}, rows = {NULL, 0, 0}, offsets = {NULL, 0, 0}, bundle_ids = {NULL, 0, 0},
         primary_ids = {NULL, 0, 0}, digests = {NULL, 0, 0}, counts = {NULL, 0, 0};
    if (!PyTuple_Check(columns) || PyTuple_GET_SIZE(columns) != N_BATCH_FIELDS) {
        PyErr_Format(PyExc_TypeError, "_fastmap: map_columns takes a tuple of %d lists (BATCH_FIELDS)", N_BATCH_FIELDS);
        return NULL;
    }
    Py_ssize_t n = -1;
    for (int k = 0; k < N_BATCH_FIELDS; k++) {
        lists[k] = PyTuple_GET_ITEM(columns, k);
        if (!PyList_Check(lists[k]) || (n >= 0 && PyList_GET_SIZE(lists[k]) != n)) {
            PyErr_Format(PyExc_ValueError, "_fastmap: column %s is not a list as long as the others", batch_fields[k]);
            return NULL;
        }
        n = PyList_GET_SIZE(lists[k]);
    }
    int64_t zero = 0;
    /* Every buffer but the text's at its final size now: the puts below cannot fail. */
    if (reserve(&rows, 4 * n) || reserve(&offsets, 8 * (n + 1)) || reserve(&bundle_ids, 44 * n) ||
        reserve(&primary_ids, 46 * n) || reserve(&digests, 64 * n) || reserve(&counts, 4 * n) ||
        put(&offsets, (const char *)&zero, 8))
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Fields fields; /* the struct is N_BATCH_FIELDS pointers, in the same order */
        PyObject **f = (PyObject **)&fields;
        for (int k = 0; k < N_BATCH_FIELDS; k++) f[k] = PyList_GET_ITEM(lists[k], i);
        char bundle_id[44], primary_id[46];
        int objects = 0;
        Py_ssize_t start = text.length;
        memcpy(bundle_id, "bundle--", 8);
        int written = write_bundle(self, &fields, &text, bundle_id + 8, primary_id, &objects);
        if (written < 0) goto done;
        if (!written) continue;
        int32_t row = (int32_t)i, count = objects;
        int64_t end = text.length;
        char digest[64];
        sha256_hex((const uint8_t *)text.p + start, (size_t)(end - start), digest, sha256_compress);
        put(&rows, (const char *)&row, 4); put(&offsets, (const char *)&end, 8); put(&bundle_ids, bundle_id, 44);
        put(&primary_ids, primary_id, 46); put(&digests, digest, 64); put(&counts, (const char *)&count, 4);
    }
    result = Py_BuildValue("(y#y#y#y#y#y#y#)", rows.p ? rows.p : "", rows.length, offsets.p, offsets.length,
                           text.p ? text.p : "", text.length, bundle_ids.p ? bundle_ids.p : "", bundle_ids.length,
                           primary_ids.p ? primary_ids.p : "", primary_ids.length, digests.p ? digests.p : "",
                           digests.length, counts.p ? counts.p : "", counts.length);
done:
    PyMem_Free(text.p); PyMem_Free(rows.p); PyMem_Free(offsets.p); PyMem_Free(bundle_ids.p);
    PyMem_Free(primary_ids.p); PyMem_Free(digests.p); PyMem_Free(counts.p);
    return result;
}

static PyMethodDef mapper_methods[] = {
    {"map_bundle", (PyCFunction)mapper_call, METH_O,
     "The MappedBundle of a Victim, or None when skipped: StixMapper._map(victim, True), compiled."},
    {"map_columns", (PyCFunction)mapper_map_columns, METH_O,
     "The bundles of a batch of victims given by column (BATCH_FIELDS), as Arrow buffers."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject MapperType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dep_assets.stix_mapping._fastmap.IncidentMapper",
    .tp_basicsize = sizeof(Mapper),
    .tp_dealloc = (destructor)mapper_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Incident bundles as JSON text, for the options StixMapper serves with it.",
    .tp_methods = mapper_methods,
    .tp_init = (initproc)mapper_init,
    .tp_new = PyType_GenericNew,
};

static PyObject *uuid5_py(PyObject *module, PyObject *args) {
    PyObject *namespace, *name;
    Sha1 s;
    char out[36];
    if (!PyArg_ParseTuple(args, "SU", &namespace, &name) || hash_namespace(&s, namespace) || uuid5_prefixed(&s, "", name, out))
        return NULL;
    return PyUnicode_FromStringAndSize(out, 36);
}

static PyObject *sha256_py(PyObject *module, PyObject *args) {
    Py_buffer data;
    int portable = 0;
    char out[64];
    if (!PyArg_ParseTuple(args, "y*|p", &data, &portable)) return NULL;
    sha256_hex((const uint8_t *)data.buf, (size_t)data.len, out, portable ? sha256_blocks : sha256_compress);
    PyBuffer_Release(&data);
    return PyUnicode_FromStringAndSize(out, 64);
}

static PyMethodDef module_methods[] = {
    {"sha256_hex", sha256_py, METH_VARARGS,
     "sha256_hex(data, portable=False): hashlib.sha256(data).hexdigest(), computed here (the portable C when asked)."},
    {"uuid5", uuid5_py, METH_VARARGS, "uuid5(namespace_bytes, name) as a str, as uuid.uuid5 computes it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastmap", NULL, -1, module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastmap(void) {
#ifdef HAVE_SHA_NI_CODE
    if (cpu_has_sha_ni()) {
        compress = sha1_compress_ni;
        sha256_compress = sha256_blocks_ni;
    }
#endif
    PyDateTime_IMPORT;
    if (!PyDateTimeAPI) return NULL;
#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL;
    INTERN(s_victim, "victim") INTERN(s_announcement_date, "announcement_date") INTERN(s_hashid, "hashid")
    INTERN(s_leak_link, "leak_link") INTERN(s_site, "site") INTERN(s_title, "title")
    INTERN(s_sector_given, "sector_given") INTERN(s_revenue, "revenue")
    INTERN(s_victim_domain_given, "victim_domain_given") INTERN(s_data_types, "data_types")
    INTERN(s_dataset, "dataset") INTERN(s_victim_domain, "victim_domain") INTERN(s_description, "description")
    INTERN(s_strip, "strip") INTERN(s_lower, "lower") INTERN(s_http, "http")
    INTERN(s_backslash, "\\") INTERN(s_backslash2, "\\\\") INTERN(s_quote, "'") INTERN(s_backslash_quote, "\\'")
#undef INTERN
    if (PyType_Ready(&MapperType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "IncidentMapper", (PyObject *)&MapperType) < 0) { Py_DECREF(m); return NULL; }
    PyObject *names = PyTuple_New(N_BATCH_FIELDS);
    if (!names) { Py_DECREF(m); return NULL; }
    for (int k = 0; k < N_BATCH_FIELDS; k++) {
        PyObject *name = PyUnicode_FromString(batch_fields[k]);
        if (!name) { Py_DECREF(names); Py_DECREF(m); return NULL; }
        PyTuple_SET_ITEM(names, k, name);
    }
    if (PyModule_AddObject(m, "BATCH_FIELDS", names) < 0) { Py_DECREF(names); Py_DECREF(m); return NULL; }
    return m;
}
