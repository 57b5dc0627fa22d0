/* `urllib.parse.unquote(text)` (UTF-8, errors="replace"), compiled.
 *
 * DEP URL-encodes about a third of its descriptions, and the Python function spends ~10 us on each:
 * most of a replay's URL-decoding time. Same result, character for character (the tests compare the
 * two on arbitrary text): each %XX with two hex digits is a byte, a `%` without them stays, and each
 * run of such bytes is decoded as UTF-8 with U+FFFD for invalid bytes. Decoding run by run gives what
 * urllib gives by decoding whole ASCII chunks: the characters between runs are ASCII or non-ASCII text
 * kept as it is, and an unfinished UTF-8 sequence becomes one U+FFFD either way.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int hex_value(Py_UCS4 c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

static int escape_at(int kind, const void *data, Py_ssize_t n, Py_ssize_t i) {
    if (i + 2 >= n) return -1;
    if (PyUnicode_READ(kind, data, i) != '%') return -1;
    int high = hex_value(PyUnicode_READ(kind, data, i + 1)), low = hex_value(PyUnicode_READ(kind, data, i + 2));
    return high < 0 || low < 0 ? -1 : high << 4 | low;
}

static PyObject *unquote(PyObject *module, PyObject *text) {
    (void)module;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "unquote() argument must be str, not %.80s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_FindChar(text, '%', 0, n, 1) < 0) return Py_NewRef(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 *out = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(n ? n : 1));
    unsigned char *run = PyMem_Malloc((size_t)(n / 3 + 1));
    if (!out || !run) { PyMem_Free(out); PyMem_Free(run); return PyErr_NoMemory(); }
    Py_ssize_t length = 0, i = 0;
    while (i < n) {
        int byte = escape_at(kind, data, n, i);
        if (byte < 0) { out[length++] = PyUnicode_READ(kind, data, i++); continue; }
        Py_ssize_t bytes = 0;
        while (byte >= 0) {
            run[bytes++] = (unsigned char)byte;
            i += 3;
            byte = escape_at(kind, data, n, i);
        }
        PyObject *decoded = PyUnicode_DecodeUTF8((const char *)run, bytes, "replace");
        if (!decoded) { PyMem_Free(out); PyMem_Free(run); return NULL; }
        for (Py_ssize_t j = 0; j < PyUnicode_GET_LENGTH(decoded); j++) out[length++] = PyUnicode_READ_CHAR(decoded, j);
        Py_DECREF(decoded);
    }
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, length);
    PyMem_Free(out);
    PyMem_Free(run);
    return result;
}

static PyMethodDef methods[] = {
    {"unquote", unquote, METH_O, "urllib.parse.unquote(text) for a str (UTF-8, errors='replace'), compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_unquote", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__unquote(void) { return PyModule_Create(&module); }
