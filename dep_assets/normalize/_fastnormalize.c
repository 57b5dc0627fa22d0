/* `normalize_record` over a batch of archived payloads, compiled, for the common records.
 *
 * `normalizer.py` is the reference. For each payload this parses the JSON (`json.loads`, given) and,
 * when the record is an object with a usable hashid and date, text fields that are strings or null,
 * a well-formed annDataTypes and only known keys, appends its `dep_victims` values straight to the
 * batch's column lists: no Victim object, no per-field Python function for ASCII text (strip, lower,
 * whitespace collapsing, bare host names, link repair, data types), and the cleaning of the values
 * that repeat (sector, country, actor...) memoized here as fields.py memoizes it. Any other record,
 * and every non-ASCII text that needs Unicode rules (casefolding, NFKC, urlsplit), goes to the same
 * Python functions the reference calls: the whole record to `fallback(index, record)`, a single field
 * to its helper. The tests normalize samples and arbitrary JSON both ways and compare the rows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define N_TEXT 16    /* normalizer.TEXT_FIELDS, in its order */
#define N_COLUMNS 32 /* transform.VICTIM_MODEL_FIELDS, in its order */

enum { VICTIM, VICTIM_DOMAIN, SITE, SECTOR, ACTOR, COUNTRY, REVENUE, AMOUNT, NAICS, ANN_LINK, ANN_TITLE,
       ANN_DESCRIPTION, VICTIM_CC, VICTIM_CITY, VICTIM_STATE, VICTIM_ADDRESS };

typedef struct {
    PyObject_HEAD
    PyObject *loads; /* json.loads */
    PyObject *record_day, *parse_data_types, *clean_str, *actor_str, *victim_key_str, *domain_str, *stripped_str,
        *repair_link, *decode_description, *without_surrogates, *hashid_key;
    PyObject *known_fields, *connector_placeholders, *placeholders; /* frozensets */
    PyObject *text_fields[N_TEXT];                                  /* str keys */
    PyObject *hashid_name, *date_name, *types_name;
    PyObject *clean_cache, *actor_cache; /* dicts: text -> clean_str(text) / actor_str(text) */
} Normalizer;

static void normalizer_dealloc(Normalizer *self) {
    Py_XDECREF(self->loads); Py_XDECREF(self->record_day); Py_XDECREF(self->parse_data_types);
    Py_XDECREF(self->clean_str); Py_XDECREF(self->actor_str); Py_XDECREF(self->victim_key_str);
    Py_XDECREF(self->domain_str); Py_XDECREF(self->stripped_str); Py_XDECREF(self->repair_link);
    Py_XDECREF(self->decode_description); Py_XDECREF(self->without_surrogates); Py_XDECREF(self->hashid_key);
    Py_XDECREF(self->known_fields); Py_XDECREF(self->connector_placeholders); Py_XDECREF(self->placeholders);
    for (int i = 0; i < N_TEXT; i++) Py_XDECREF(self->text_fields[i]);
    Py_XDECREF(self->hashid_name); Py_XDECREF(self->date_name); Py_XDECREF(self->types_name);
    Py_XDECREF(self->clean_cache); Py_XDECREF(self->actor_cache);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int normalizer_init(Normalizer *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"loads", "record_day", "parse_data_types", "clean_str", "actor_str", "victim_key_str",
                            "domain_str", "stripped_str", "repair_link", "decode_description",
                            "without_surrogates", "hashid_key", "known_fields", "connector_placeholders",
                            "placeholders", "text_fields", NULL};
    PyObject *given[15], *text_fields;
    if (self->loads) {
        PyErr_SetString(PyExc_RuntimeError, "_fastnormalize: a BatchNormalizer is initialized once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOOOOOOOO!O!O!O!", names, &given[0], &given[1], &given[2],
                                     &given[3], &given[4], &given[5], &given[6], &given[7], &given[8], &given[9],
                                     &given[10], &given[11], &PyFrozenSet_Type, &given[12], &PyFrozenSet_Type,
                                     &given[13], &PyFrozenSet_Type, &given[14], &PyTuple_Type, &text_fields))
        return -1;
    if (PyTuple_GET_SIZE(text_fields) != N_TEXT) {
        PyErr_Format(PyExc_ValueError, "_fastnormalize: text_fields has %d names", N_TEXT);
        return -1;
    }
    for (int i = 0; i < N_TEXT; i++)
        if (!PyUnicode_Check(PyTuple_GET_ITEM(text_fields, i))) {
            PyErr_SetString(PyExc_TypeError, "_fastnormalize: a text field name is a str");
            return -1;
        }
    /* Everything checked: keep references (in the order of `names`). */
    PyObject **slots[15] = {&self->loads, &self->record_day, &self->parse_data_types, &self->clean_str,
                            &self->actor_str, &self->victim_key_str, &self->domain_str, &self->stripped_str,
                            &self->repair_link, &self->decode_description, &self->without_surrogates,
                            &self->hashid_key, &self->known_fields, &self->connector_placeholders, &self->placeholders};
    for (int i = 0; i < 15; i++) *slots[i] = Py_NewRef(given[i]);
    for (int i = 0; i < N_TEXT; i++) self->text_fields[i] = Py_NewRef(PyTuple_GET_ITEM(text_fields, i));
    if (!(self->hashid_name = PyUnicode_InternFromString("hashid")) ||
        !(self->date_name = PyUnicode_InternFromString("date")) ||
        !(self->types_name = PyUnicode_InternFromString("annDataTypes")) || !(self->clean_cache = PyDict_New()) ||
        !(self->actor_cache = PyDict_New()))
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* ASCII text, with Python's rules                                                                  */
/* ---------------------------------------------------------------------------------------------- */

/* str.isspace() for an ASCII character: what str.strip() and str.split() remove. */
static int ascii_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

static void ascii_strip(const unsigned char *p, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *end) {
    Py_ssize_t a = 0, b = n;
    while (a < b && ascii_space(p[a])) a++;
    while (b > a && ascii_space(p[b - 1])) b--;
    *start = a; *end = b;
}

/* text.strip() of an ASCII str (the same object when nothing is stripped). */
static PyObject *ascii_stripped(PyObject *text) {
    const unsigned char *p = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), a, b;
    ascii_strip(p, n, &a, &b);
    if (a == 0 && b == n) return Py_NewRef(text);
    return PyUnicode_FromStringAndSize((const char *)p + a, b - a);
}

/* text.strip().lower() of an ASCII str. */
static PyObject *ascii_stripped_lower(PyObject *text) {
    const unsigned char *p = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), a, b;
    ascii_strip(p, n, &a, &b);
    PyObject *out = PyUnicode_New(b - a, 127);
    if (!out) return NULL;
    unsigned char *o = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t i = a; i < b; i++) o[i - a] = (p[i] >= 'A' && p[i] <= 'Z') ? (unsigned char)(p[i] + 32) : p[i];
    return out;
}

/* helper(text), a new reference. */
static PyObject *call1(PyObject *helper, PyObject *text) { return PyObject_CallOneArg(helper, text); }

/* keys.without_surrogates: the same object unless it holds a lone surrogate (then the helper). */
static PyObject *no_surrogates(Normalizer *m, PyObject *text) {
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *d = PyUnicode_2BYTE_DATA(text);
        for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(text); i < n; i++)
            if (d[i] >= 0xD800 && d[i] <= 0xDFFF) return call1(m->without_surrogates, text);
    } else if (kind == PyUnicode_4BYTE_KIND) {
        const Py_UCS4 *d = PyUnicode_4BYTE_DATA(text);
        for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(text); i < n; i++)
            if (d[i] >= 0xD800 && d[i] <= 0xDFFF) return call1(m->without_surrogates, text);
    }
    return Py_NewRef(text);
}

/* keys.hashid_key for a str. */
static PyObject *hashid_key(Normalizer *m, PyObject *text) {
    if (!PyUnicode_IS_ASCII(text)) return call1(m->hashid_key, text);
    PyObject *key = ascii_stripped_lower(text);
    if (key && PyUnicode_GET_LENGTH(key) == 0) { Py_DECREF(key); return Py_NewRef(Py_None); }
    return key;
}

/* fields.stripped_str */
static PyObject *stripped(Normalizer *m, PyObject *text) {
    if (!PyUnicode_IS_ASCII(text)) return call1(m->stripped_str, text);
    PyObject *out = ascii_stripped(text);
    if (out && PyUnicode_GET_LENGTH(out) == 0) { Py_DECREF(out); return Py_NewRef(Py_None); }
    return out;
}

/* fields.domain_str: a bare ASCII host name ([A-Za-z0-9._-]+ once stripped) lower-cased here, the
 * rest (URLs, anything urlsplit has a say in) by the helper. */
static PyObject *domain(Normalizer *m, PyObject *text) {
    if (!PyUnicode_IS_ASCII(text)) return call1(m->domain_str, text);
    const unsigned char *p = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t a, b;
    ascii_strip(p, PyUnicode_GET_LENGTH(text), &a, &b);
    if (a == b) return Py_NewRef(Py_None);
    for (Py_ssize_t i = a; i < b; i++) {
        unsigned char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return call1(m->domain_str, text);
    }
    return ascii_stripped_lower(text);
}

/* fields.victim_key_str: " ".join(text.lower().split()), None for a placeholder. */
static PyObject *victim_key(Normalizer *m, PyObject *text) {
    if (!PyUnicode_IS_ASCII(text)) return call1(m->victim_key_str, text);
    const unsigned char *p = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), length = 0;
    PyObject *key = PyUnicode_New(n, 127);
    if (!key) return NULL;
    unsigned char *o = PyUnicode_1BYTE_DATA(key);
    for (Py_ssize_t i = 0; i < n;) {
        while (i < n && ascii_space(p[i])) i++;
        if (i == n) break;
        if (length) o[length++] = ' ';
        while (i < n && !ascii_space(p[i])) { o[length++] = (p[i] >= 'A' && p[i] <= 'Z') ? (unsigned char)(p[i] + 32) : p[i]; i++; }
    }
    if (length < n) { /* shorter than allocated: a right-sized copy */
        PyObject *exact = PyUnicode_FromStringAndSize((const char *)o, length);
        Py_DECREF(key);
        if (!(key = exact)) return NULL;
    }
    int placeholder = PySet_Contains(m->placeholders, key);
    if (placeholder) { Py_DECREF(key); return placeholder < 0 ? NULL : Py_NewRef(Py_None); }
    return key;
}

/* The connector's skip test: victim.strip().lower() in CONNECTOR_VICTIM_PLACEHOLDERS (1, 0, -1). */
static int connector_placeholder(Normalizer *m, PyObject *text) {
    PyObject *folded;
    if (PyUnicode_IS_ASCII(text)) {
        folded = ascii_stripped_lower(text);
    } else {
        PyObject *s = PyObject_CallMethod(text, "strip", NULL);
        folded = s ? PyObject_CallMethod(s, "lower", NULL) : NULL;
        Py_XDECREF(s);
    }
    if (!folded) return -1;
    int r = PySet_Contains(m->connector_placeholders, folded);
    Py_DECREF(folded);
    return r;
}

/* fields.repair_link for a str: "" gives None, a leading https// or http// is repaired. */
static PyObject *repair_link(Normalizer *m, PyObject *text) {
    if (!PyUnicode_IS_ASCII(text)) return call1(m->repair_link, text);
    const char *p = (const char *)PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (n == 0) return Py_NewRef(Py_None);
    Py_ssize_t cut = n >= 7 && memcmp(p, "https//", 7) == 0 ? 7 : n >= 6 && memcmp(p, "http//", 6) == 0 ? 6 : 0;
    if (!cut) return Py_NewRef(text);
    PyObject *out = PyUnicode_New(n + 1, 127); /* the scheme, "://", the rest (which may hold NULs) */
    if (!out) return NULL;
    char *o = (char *)PyUnicode_1BYTE_DATA(out);
    memcpy(o, p, (size_t)cut - 2);
    memcpy(o + cut - 2, "://", 3);
    memcpy(o + cut + 1, p + cut, (size_t)(n - cut));
    return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* A batch                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

/* `helper(value)` for a str, None for None (a new reference). */
static PyObject *or_none(PyObject *value, PyObject *(*f)(Normalizer *, PyObject *), Normalizer *m) {
    return value == Py_None ? Py_NewRef(Py_None) : f(m, value);
}

/* Memoized here as fields.py memoizes them (texts up to 256 characters, bounded): clean_str and
 * actor_str are pure, and sector, country, actor, city... repeat across announcements. */
#define CACHE_MAX_LEN 256
#define CACHE_SIZE 8192

static PyObject *or_none_cached(PyObject *value, PyObject *helper, PyObject *cache) {
    if (value == Py_None) return Py_NewRef(Py_None);
    if (PyUnicode_GET_LENGTH(value) > CACHE_MAX_LEN) return call1(helper, value);
    PyObject *hit = PyDict_GetItemWithError(cache, value);
    if (hit) return Py_NewRef(hit);
    if (PyErr_Occurred()) return NULL;
    PyObject *result = call1(helper, value);
    if (!result) return NULL;
    if (PyDict_GET_SIZE(cache) >= CACHE_SIZE) PyDict_Clear(cache);
    if (PyDict_SetItem(cache, value, result) < 0) { Py_DECREF(result); return NULL; }
    return result;
}

/* fields.parse_data_types for null or a list of ASCII strings, as a list (the types) with `*ok` set;
 * anything else through the helper, whose tuple is then listed. */
static PyObject *data_types(Normalizer *m, PyObject *value, int *ok) {
    *ok = 1;
    if (value == Py_None) return PyList_New(0);
    int simple = PyList_CheckExact(value);
    for (Py_ssize_t i = 0; simple && i < PyList_GET_SIZE(value); i++) {
        PyObject *item = PyList_GET_ITEM(value, i);
        simple = PyUnicode_CheckExact(item) && PyUnicode_IS_ASCII(item);
    }
    if (!simple) {
        PyObject *parsed = call1(m->parse_data_types, value);
        if (!parsed) return NULL;
        if (!PyTuple_Check(parsed) || PyTuple_GET_SIZE(parsed) != 2) {
            Py_DECREF(parsed);
            PyErr_SetString(PyExc_TypeError, "_fastnormalize: parse_data_types returns (types, ok)");
            return NULL;
        }
        *ok = PyTuple_GET_ITEM(parsed, 1) == Py_True;
        PyObject *types = PySequence_List(PyTuple_GET_ITEM(parsed, 0));
        Py_DECREF(parsed);
        return types;
    }
    PyObject *types = PyList_New(0);
    if (!types) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) { /* item.strip().upper(), non-empty, first kept */
        PyObject *item = PyList_GET_ITEM(value, i);
        const unsigned char *p = PyUnicode_1BYTE_DATA(item);
        Py_ssize_t a, b;
        ascii_strip(p, PyUnicode_GET_LENGTH(item), &a, &b);
        if (a == b) continue;
        PyObject *text = PyUnicode_New(b - a, 127);
        if (!text) { Py_DECREF(types); return NULL; }
        unsigned char *o = PyUnicode_1BYTE_DATA(text);
        for (Py_ssize_t j = a; j < b; j++) o[j - a] = (p[j] >= 'a' && p[j] <= 'z') ? (unsigned char)(p[j] - 32) : p[j];
        int seen = PySequence_Contains(types, text);
        if (seen < 0 || (!seen && PyList_Append(types, text) < 0)) { Py_DECREF(text); Py_DECREF(types); return NULL; }
        Py_DECREF(text);
    }
    return types;
}

/* The 32 values of one common record, or 0 when it is not one (the caller then runs the fallback). */
static int common_record(Normalizer *m, PyObject *record, PyObject *dataset, PyObject *const provenance[4],
                         PyObject *out[N_COLUMNS]) {
    PyObject *text[N_TEXT], *key = NULL, *day = NULL, *types = NULL, *item, *k;
    Py_ssize_t pos = 0;
    int found;

    /* only DEP's known keys (otherwise extra_fields: the reference lists them) */
    while (PyDict_Next(record, &pos, &k, &item)) {
        if ((found = PySet_Contains(m->known_fields, k)) <= 0) return found;
    }
    /* hashid and date usable (otherwise the reference quarantines it) */
    if (!(item = PyDict_GetItemWithError(record, m->hashid_name))) return PyErr_Occurred() ? -1 : 0;
    if (!PyUnicode_Check(item)) return 0;
    if (!(key = hashid_key(m, item))) return -1;
    if (key == Py_None) { Py_DECREF(key); return 0; }
    if (!(item = PyDict_GetItemWithError(record, m->date_name))) { Py_DECREF(key); return PyErr_Occurred() ? -1 : 0; }
    if (!(day = call1(m->record_day, item))) { Py_DECREF(key); return -1; }
    if (day == Py_None) { Py_DECREF(key); Py_DECREF(day); return 0; }
    /* text fields: str or null (otherwise invalid_fields) */
    for (int i = 0; i < N_TEXT; i++) {
        if (!(item = PyDict_GetItemWithError(record, m->text_fields[i]))) {
            if (PyErr_Occurred()) goto fail;
            item = Py_None;
        } else if (item != Py_None && !PyUnicode_Check(item)) {
            Py_DECREF(key); Py_DECREF(day);
            return 0;
        }
        text[i] = item; /* borrowed from the record */
    }
    /* annDataTypes: null or a list of strings (otherwise invalid_fields) */
    if (!(item = PyDict_GetItemWithError(record, m->types_name))) {
        if (PyErr_Occurred()) goto fail;
        item = Py_None;
    }
    int types_ok;
    if (!(types = data_types(m, item, &types_ok))) goto fail;
    if (!types_ok) { Py_DECREF(key); Py_DECREF(day); Py_DECREF(types); return 0; }

    /* From here the record is a common one: its values, in VICTIM_MODEL_FIELDS order. */
    memset(out, 0, N_COLUMNS * sizeof *out);
    PyObject *victim = text[VICTIM], *victim_domain = text[VICTIM_DOMAIN], *site = text[SITE];
    out[0] = Py_NewRef(dataset);
    out[1] = key; key = NULL;
    out[2] = day; day = NULL;
    if (victim == Py_None) {
        out[3] = Py_NewRef(Py_None); out[4] = Py_NewRef(Py_None); out[5] = Py_NewRef(Py_True);
    } else {
        int placeholder;
        if (!(out[3] = no_surrogates(m, victim)) || !(out[4] = victim_key(m, victim)) ||
            (placeholder = connector_placeholder(m, victim)) < 0)
            goto fail_out;
        out[5] = Py_NewRef(placeholder ? Py_True : Py_False);
    }
    /* victim_domain from victimDomain, else from site; victim_domain_given; site */
    if (!(out[6] = or_none(victim_domain, domain, m)) || !(out[7] = or_none(victim_domain, stripped, m)) ||
        !(out[8] = or_none(site, stripped, m)))
        goto fail_out;
    if (out[6] == Py_None && site != Py_None) {
        Py_DECREF(out[6]);
        if (!(out[6] = domain(m, site))) goto fail_out;
    }
    if (!(out[9] = or_none_cached(text[SECTOR], m->clean_str, m->clean_cache)) || !(out[10] = or_none(text[SECTOR], no_surrogates, m)) ||
        !(out[11] = or_none_cached(text[ACTOR], m->actor_str, m->actor_cache)) || !(out[12] = or_none(text[ACTOR], no_surrogates, m)) ||
        !(out[13] = or_none_cached(text[COUNTRY], m->clean_str, m->clean_cache)) || !(out[14] = or_none(text[COUNTRY], no_surrogates, m)))
        goto fail_out;
    {   /* victim_country_code: clean_str(victimCC).upper(), None when that is empty or None */
        PyObject *code = or_none_cached(text[VICTIM_CC], m->clean_str, m->clean_cache);
        if (!code) goto fail_out;
        int truth = PyObject_IsTrue(code);
        if (truth < 0) { Py_DECREF(code); goto fail_out; }
        out[15] = truth ? PyObject_CallMethod(code, "upper", NULL) : Py_NewRef(Py_None);
        Py_DECREF(code);
        if (!out[15]) goto fail_out;
    }
    if (!(out[16] = or_none_cached(text[VICTIM_CITY], m->clean_str, m->clean_cache)) ||
        !(out[17] = or_none_cached(text[VICTIM_STATE], m->clean_str, m->clean_cache)) ||
        !(out[18] = or_none_cached(text[VICTIM_ADDRESS], m->clean_str, m->clean_cache)) ||
        !(out[19] = or_none(text[REVENUE], no_surrogates, m)) || !(out[20] = or_none_cached(text[AMOUNT], m->clean_str, m->clean_cache)) ||
        !(out[21] = or_none_cached(text[NAICS], m->clean_str, m->clean_cache)) ||
        !(out[23] = or_none(text[ANN_LINK], repair_link, m)) || !(out[24] = or_none(text[ANN_TITLE], no_surrogates, m)) ||
        !(out[25] = call1(m->decode_description, text[ANN_DESCRIPTION])))
        goto fail_out;
    out[22] = types; types = NULL;
    for (int i = 0; i < 4; i++) out[26 + i] = Py_NewRef(provenance[i]); /* first/last seen, versions, fetch */
    if (!(out[30] = PyList_New(0)) || !(out[31] = PyList_New(0))) goto fail_out;
    return 1;

fail_out:
    for (int i = 0; i < N_COLUMNS; i++) Py_CLEAR(out[i]);
fail:
    Py_XDECREF(key); Py_XDECREF(day); Py_XDECREF(types);
    return -1;
}

/* normalize(payloads, dataset, first_seen, last_seen, versions_seen, fetch_id, columns, kept, fallback)
 *
 * For each payload (and its provenance, one list each): a common record's values are appended to the
 * 32 `columns` and its index to `kept`; any other record is passed, parsed, to `fallback(index,
 * record)`, which does what the reference does with it (appending to the same lists). In order. */
static PyObject *normalizer_normalize(Normalizer *self, PyObject *args) {
    PyObject *payloads, *dataset, *lists[4], *columns, *kept, *fallback;
    if (!self->loads) {
        PyErr_SetString(PyExc_RuntimeError, "_fastnormalize: the BatchNormalizer was not initialized");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!UO!O!O!O!O!O!O", &PyList_Type, &payloads, &dataset, &PyList_Type, &lists[0],
                          &PyList_Type, &lists[1], &PyList_Type, &lists[2], &PyList_Type, &lists[3], &PyTuple_Type,
                          &columns, &PyList_Type, &kept, &fallback))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(payloads);
    for (int i = 0; i < 4; i++)
        if (PyList_GET_SIZE(lists[i]) != n) { PyErr_SetString(PyExc_ValueError, "_fastnormalize: provenance lists differ in length"); return NULL; }
    if (PyTuple_GET_SIZE(columns) != N_COLUMNS) { PyErr_Format(PyExc_ValueError, "_fastnormalize: %d columns expected", N_COLUMNS); return NULL; }
    for (int i = 0; i < N_COLUMNS; i++)
        if (!PyList_Check(PyTuple_GET_ITEM(columns, i))) { PyErr_SetString(PyExc_TypeError, "_fastnormalize: columns are lists"); return NULL; }

    for (Py_ssize_t row = 0; row < n; row++) {
        PyObject *record = PyObject_CallOneArg(self->loads, PyList_GET_ITEM(payloads, row));
        if (!record) return NULL;
        PyObject *provenance[4], *values[N_COLUMNS];
        for (int i = 0; i < 4; i++) provenance[i] = PyList_GET_ITEM(lists[i], row);
        int common = PyDict_CheckExact(record) ? common_record(self, record, dataset, provenance, values) : 0;
        if (common < 0) { Py_DECREF(record); return NULL; }
        if (common) {
            int failed = 0;
            for (int i = 0; i < N_COLUMNS; i++) {
                failed = failed || PyList_Append(PyTuple_GET_ITEM(columns, i), values[i]) < 0;
                Py_DECREF(values[i]);
            }
            PyObject *index = PyLong_FromSsize_t(row);
            failed = failed || !index || PyList_Append(kept, index) < 0;
            Py_XDECREF(index);
            if (failed) { Py_DECREF(record); return NULL; }
        } else {
            PyObject *index = PyLong_FromSsize_t(row);
            PyObject *r = index ? PyObject_CallFunctionObjArgs(fallback, index, record, NULL) : NULL;
            Py_XDECREF(index);
            if (!r) { Py_DECREF(record); return NULL; }
            Py_DECREF(r);
        }
        Py_DECREF(record);
    }
    Py_RETURN_NONE;
}

static PyMethodDef normalizer_methods[] = {
    {"normalize", (PyCFunction)normalizer_normalize, METH_VARARGS,
     "normalize(payloads, dataset, first_seen, last_seen, versions_seen, fetch_id, columns, kept, fallback)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject NormalizerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dep_assets.normalize._fastnormalize.BatchNormalizer",
    .tp_basicsize = sizeof(Normalizer),
    .tp_dealloc = (destructor)normalizer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "normalize_record over a batch of payloads, appending dep_victims values by column.",
    .tp_methods = normalizer_methods,
    .tp_init = (initproc)normalizer_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastnormalize", NULL, -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastnormalize(void) {
    if (PyType_Ready(&NormalizerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "BatchNormalizer", (PyObject *)&NormalizerType) < 0) { Py_DECREF(m); return NULL; }
    static const char *columns[N_COLUMNS] = {
        "dataset", "hashid", "announcement_date", "victim", "victim_normalized", "victim_is_placeholder",
        "victim_domain", "victim_domain_given", "site", "sector", "sector_given", "actor", "actor_given", "country",
        "country_given", "victim_country_code", "victim_city", "victim_state", "victim_address", "revenue", "amount",
        "naics", "data_types", "leak_link", "title", "description", "first_seen", "last_seen", "versions_seen",
        "fetch_id", "extra_fields", "invalid_fields"};
    PyObject *names = PyTuple_New(N_COLUMNS);
    if (!names) { Py_DECREF(m); return NULL; }
    for (int i = 0; i < N_COLUMNS; i++) {
        PyObject *name = PyUnicode_FromString(columns[i]);
        if (!name) { Py_DECREF(names); Py_DECREF(m); return NULL; }
        PyTuple_SET_ITEM(names, i, name);
    }
    if (PyModule_AddObject(m, "COLUMNS", names) < 0) { Py_DECREF(names); Py_DECREF(m); return NULL; }
    return m;
}
