# Declarations of the C hot loops in wsframe_kernels.h, shared by the .pyx modules.
cdef extern from "wsframe_kernels.h":
    void wsf_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
                  const unsigned char *key) nogil
    Py_ssize_t wsf_utf8_feed(int *state, const unsigned char *p, Py_ssize_t n) nogil
