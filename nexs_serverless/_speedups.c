/* The span start's attribute check, compiled: `copy_plain(dest, src)`.
 *
 * Why C: checking each attribute of `tracer.span(..., attributes={...})` in Python
 * costs about 1,100 instructions an attribute on CPython 3.11 (the loop, two type
 * tests, the store), a fifth of a span's start and end with three attributes,
 * and every C-level combination of built-ins tried counted as many or more
 * (README, "Where the per-span time goes"). This one function does the same
 * check in one pass over the dict, and is all that is compiled.
 *
 * Optional: `nexs_serverless.tracing` falls back to its Python loop when this
 * module is not built or does not load; results are the same either way
 * (tests/test_speedups.py). Built against the stable ABI of Python 3.10, so one
 * `.abi3.so` serves every supported Python of an architecture.
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* copy_plain(dest, src) -> bool
 *
 * When `src` is a dict (exactly) whose keys are all non-empty str (exactly)
 * and whose values' types are all exactly str, int, float or bool, copy its
 * items into `dest` and return True. Otherwise return False and leave `dest`
 * as it was: the caller then checks and converts item by item.
 */
static PyObject *
copy_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "copy_plain(dest: dict, src: Mapping) takes a dict and a mapping");
        return NULL;
    }
    PyObject *dest = args[0];
    PyObject *src = args[1];
    if (!PyDict_CheckExact(src)) {
        Py_RETURN_FALSE;
    }
    Py_ssize_t pos = 0;
    PyObject *key;
    PyObject *value;
    /* Nothing below runs Python code, so `src` cannot change while it is walked. */
    while (PyDict_Next(src, &pos, &key, &value)) {
        PyTypeObject *type = Py_TYPE(value);
        if (!PyUnicode_CheckExact(key) || PyUnicode_GetLength(key) == 0) {
            Py_RETURN_FALSE;
        }
        if (type != &PyUnicode_Type && type != &PyLong_Type && type != &PyFloat_Type &&
            type != &PyBool_Type) {
            Py_RETURN_FALSE;
        }
    }
    if (PyDict_Update(dest, src) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyMethodDef speedups_methods[] = {
    {"copy_plain", (PyCFunction)(void (*)(void))copy_plain, METH_FASTCALL,
     "copy_plain(dest, src) -> bool: copy `src` into `dest` if every item is a plain attribute."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "nexs_serverless._speedups",
    "The span start's attribute check, compiled (see _speedups.c).",
    0,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
