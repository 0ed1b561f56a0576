"""Register-tiled matrix-product micro-kernel for Numba, written in LLVM IR.

The llvmlite wheels give Numba no vector types, and LLVM does not keep an MR x 2-vector
block of accumulators in registers when the loops are written in Python; a BLAS call per
tile, on the other hand, repacks both operands on every call.  :func:`mk_block` is a Numba
intrinsic that emits the classic broadcast-FMA micro-kernel (as in BLIS/GotoBLAS)::

    C[i, j] (+)= sum_k A[i sa_r + k sa_c] * B[k ldb + j],   0 <= i < MR, 0 <= j < NR,

with MR rows and NR = 2 SIMD vectors of columns, both chosen for the instruction set
(:mod:`._isa`): 12 x 32 float32 / 12 x 16 float64 with AVX-512, 6 x 16 / 6 x 8 with AVX2,
6 x 8 / 6 x 4 generic; the 2 MR vector accumulators stay in registers for the whole k loop;
every step loads two vectors of B's row k and broadcasts one element of A per row
(:data:`mk_block_one` does the same with one vector).  A is addressed through two strides,
so ``A`` may be a matrix or the transpose of one without a copy; B and C are row-major
with leading dimensions ``ldb`` and ``ldc``.  ``mr < MR`` rows are handled in the kernel
(loads clamped to the last valid row, stores skipped); the caller covers column remainders
(:func:`gemm_block`: one-vector blocks, then plain loops).

Arrays are 1-D contiguous (flat views of the matrices); offsets, strides and leading
dimensions are in elements.
"""
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _isa
from ._math import EXP_UNDERFLOW, FASTMATH, fexp

# rows per micro-tile: its MR x NVEC accumulators, NVEC vectors of B and a broadcast must fit
# the vector registers (32 with AVX-512, 16 with AVX2 / SSE); 12 measured best of 6 / 12 / 14
MR = {"avx512": 12, "avx2": 6, "generic": 6}[_isa.ISA]
NVEC = 2    # SIMD vectors of columns per micro-tile


def tile_multiple(step, at_least):
    """The smallest multiple of ``step`` that is >= ``at_least`` (tile sizes that end in
    whole micro-tiles whatever the width chosen)."""
    return step * -(-at_least // step)


def lanes(dtype):
    """SIMD lanes of the chosen vector width for a Numba float type."""
    return _isa.lanes(4 if dtype == types.float32 else 8)


ACCUMULATE = 1  # mode bit: C += A B instead of C = A B
COLUMN_MAX = 2  # mode bit: also colmax[j] = max(colmax[j], max_i (A B)[i, j])
EXP_SHIFTED = 4  # mode bit: C = exp(A B - shift[j]), sums[j] += sum_i C[i, j] (+ NaN poison)
GRAD_SOFTMAX = 8  # mode bit: C = C_old * (A B - shift[j]) (softmax backward, C_old = P)
EXP_NO_SUMS = 16  # with EXP_SHIFTED: no column sums (and no poison through them)


# 1.5 * 2^23 + 127: y + EXP_MAGIC (for |y| < 2^22) rounds y to the nearest integer k and
# leaves k + 127, the biased exponent of 2^k, in the low mantissa bits
EXP_MAGIC = 12583039.0


def _vector_exp(context, builder, x, vty, width, f32):
    """exp(x) of a vector: for float32 the reduction and polynomial of
    ``_math.fast_exp_f32`` with fewer instructions (12 instead of 16 on AVX2), meant for
    scores of unmasked tiles: arguments are clamped at EXP_UNDERFLOW = -87 (so x <= -87
    gives e^-87 ~ 1.6e-38, not 0, and NaN gives NaN or e^-87: callers catch NaN / Inf
    scores through their poison sums), and k = round(x / ln 2) comes from adding EXP_MAGIC,
    whose low bits, shifted into the exponent field, are 2^k (no float -> int conversion).
    float64 uses ``llvm.exp`` (libm per lane)."""
    fty = vty.element
    if not f32:
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty]),
                                            "llvm.exp.v%df64" % width)
        return builder.call(fn, [x])

    def splat(v):
        return ir.Constant(vty, [ir.Constant(fty, v)] * width)

    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                         "llvm.fma.v%df32" % width)
    low = splat(float(EXP_UNDERFLOW))
    xc = builder.select(builder.fcmp_ordered(">", x, low), x, low)  # one max instruction
    t = builder.call(fma, [xc, splat(1.4426950408889634), splat(EXP_MAGIC)])
    k = builder.fsub(t, splat(EXP_MAGIC))
    r = builder.call(fma, [k, splat(-0.693359375), xc])
    r = builder.call(fma, [k, splat(2.12194440e-4), r])
    p = splat(1.0 / 720.0)
    for coef in (1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0):
        p = builder.call(fma, [p, r, splat(coef)])
    ivty = ir.VectorType(ir.IntType(32), width)
    two_k = builder.bitcast(builder.shl(builder.bitcast(t, ivty), ir.Constant(ivty, [23] * width)),
                            vty)
    return builder.fmul(p, two_k)


def _micro_kernel(nvec):
    """The micro-kernel intrinsic over ``nvec`` SIMD vectors of columns."""

    def mk_block(typingctx, c, c_off, ldc, a, a_off, sa_r, sa_c, b, b_off, ldb, kdim, mr, mode,
                 cs, cs_off, cs_len):
        """C block (+)= A block @ B panel (see module docstring); ``mode`` bits:

        - ACCUMULATE: C += A B instead of C = A B;
        - COLUMN_MAX: colmax = max(colmax, column maxima of A B);
        - EXP_SHIFTED: C = exp(A B - shift), sums += column sums of C plus (A B) * 0 (NaN when
          a product is NaN/Inf: the caller's sums carry the poison); for scores of tiles with
          no masked entry (exp arguments below -87 give e^-87, see :func:`_vector_exp`);
        - EXP_NO_SUMS (with EXP_SHIFTED): the exponentials only, ``sums`` left alone;
        - GRAD_SOFTMAX: C = C_old * (A B - shift), the softmax backward dS = P (dP - delta) with
          P in C and delta as the shift (not combined with the other bits).

        The column state ``cs`` holds colmax, shift and sums in segments of ``cs_len``; this
        block's columns start at ``cs_off`` in each.  Rows past ``mr`` repeat row mr - 1: they
        cannot change a maximum and are left out of the sums and stores.
        """
        if not (isinstance(c, types.Array) and c.ndim == a.ndim == b.ndim == cs.ndim == 1
                and c.dtype in (types.float32, types.float64)
                and a.dtype == c.dtype and b.dtype == c.dtype and cs.dtype == c.dtype):
            return None
        ints = (c_off, ldc, a_off, sa_r, sa_c, b_off, ldb, kdim, mr, mode, cs_off, cs_len)
        if not all(isinstance(t, types.Integer) for t in ints):
            return None
        sig = types.void(c, types.intp, types.intp, a, types.intp, types.intp, types.intp,
                         b, types.intp, types.intp, types.intp, types.intp, types.intp,
                         cs, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            (c_v, c_off_v, ldc_v, a_v, a_off_v, sar_v, sac_v, b_v, b_off_v, ldb_v, k_v, mr_v,
             mode_v, cm_v, cm_off_v, cs_len_v) = args
            ity = context.get_value_type(types.intp)
            fty = context.get_value_type(c.dtype)
            width = lanes(c.dtype)
            vty = ir.VectorType(fty, width)
            c_ptr = context.make_array(c)(context, builder, c_v).data
            a_ptr = context.make_array(a)(context, builder, a_v).data
            b_ptr = context.make_array(b)(context, builder, b_v).data
            zero_v = ir.Constant(vty, [ir.Constant(fty, 0.0)] * width)
            splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
            last_row = builder.sub(mr_v, ir.Constant(ity, 1))
            a_rows = []
            for i in range(MR):
                row = builder.select(builder.icmp_signed("<", ir.Constant(ity, i), mr_v),
                                     ir.Constant(ity, i), last_row)
                a_rows.append(builder.add(a_off_v, builder.mul(row, sar_v)))
            accs = [[cgutils.alloca_once_value(builder, zero_v) for _ in range(nvec)]
                    for _ in range(MR)]

            def vec_ptr(base, index):
                return builder.bitcast(builder.gep(base, [index]), vty.as_pointer())

            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty, vty, vty]),
                "llvm.fma.v%d%s" % (width, "f32" if c.dtype == types.float32 else "f64"))
            with cgutils.for_range(builder, k_v) as loop:
                kk = loop.index
                brow = builder.add(b_off_v, builder.mul(kk, ldb_v))
                bvecs = [builder.load(vec_ptr(b_ptr, builder.add(brow,
                                                                 ir.Constant(ity, j * width))),
                                      align=1) for j in range(nvec)]
                koff = builder.mul(kk, sac_v)
                for i in range(MR):
                    s = builder.load(builder.gep(a_ptr, [builder.add(a_rows[i], koff)]))
                    undef = ir.Constant(vty, ir.Undefined)
                    sv = builder.shuffle_vector(
                        builder.insert_element(undef, s, ir.Constant(ity, 0)), undef, splat_mask)
                    for j in range(nvec):
                        builder.store(builder.call(fma, [sv, bvecs[j], builder.load(accs[i][j])]),
                                      accs[i][j])
            do_acc = builder.icmp_signed(
                "!=", builder.and_(mode_v, ir.Constant(ity, ACCUMULATE)), ir.Constant(ity, 0))
            do_max = builder.icmp_signed(
                "!=", builder.and_(mode_v, ir.Constant(ity, COLUMN_MAX)), ir.Constant(ity, 0))
            do_exp = builder.icmp_signed(
                "!=", builder.and_(mode_v, ir.Constant(ity, EXP_SHIFTED)), ir.Constant(ity, 0))
            cm_ptr = context.make_array(cs)(context, builder, cm_v).data
            with builder.if_then(do_max):
                for j in range(nvec):
                    p = vec_ptr(cm_ptr, builder.add(cm_off_v, ir.Constant(ity, j * width)))
                    top = builder.load(p, align=1)
                    for i in range(MR):
                        x = builder.load(accs[i][j])
                        top = builder.select(builder.fcmp_ordered(">", x, top), x, top)
                    builder.store(top, p, align=1)
            do_sums = builder.icmp_signed(
                "==", builder.and_(mode_v, ir.Constant(ity, EXP_NO_SUMS)), ir.Constant(ity, 0))
            with builder.if_then(do_exp):
                for j in range(nvec):
                    col = builder.add(cm_off_v, ir.Constant(ity, j * width))
                    shift = builder.load(vec_ptr(cm_ptr, builder.add(col, cs_len_v)), align=1)
                    xs, es = [], []
                    for i in range(MR):
                        xs.append(builder.load(accs[i][j]))
                        es.append(_vector_exp(context, builder, builder.fsub(xs[i], shift), vty,
                                              width, c.dtype == types.float32))
                        builder.store(es[i], accs[i][j])
                    with builder.if_then(do_sums):
                        sum_p = vec_ptr(cm_ptr, builder.add(col, builder.add(cs_len_v, cs_len_v)))
                        total = builder.load(sum_p, align=1)
                        for i in range(MR):
                            valid = builder.icmp_signed("<", ir.Constant(ity, i), mr_v)
                            term = builder.call(fma, [xs[i], zero_v, es[i]])  # e + x * 0: poison
                            total = builder.fadd(total, builder.select(valid, term, zero_v))
                        builder.store(total, sum_p, align=1)

            def store_rows(combine):
                """C rows < mr: C = combine(A B, C_old, column vector j)."""
                for i in range(MR):
                    with builder.if_then(builder.icmp_signed("<", ir.Constant(ity, i), mr_v)):
                        crow = builder.add(c_off_v, builder.mul(ir.Constant(ity, i), ldc_v))
                        for j in range(nvec):
                            p = vec_ptr(c_ptr, builder.add(crow, ir.Constant(ity, j * width)))
                            val = combine(builder.load(accs[i][j]), builder.load(p, align=1), j)
                            builder.store(val, p, align=1)

            do_grad = builder.icmp_signed(
                "!=", builder.and_(mode_v, ir.Constant(ity, GRAD_SOFTMAX)), ir.Constant(ity, 0))
            with builder.if_else(do_grad) as (grad, plain):
                with grad:
                    shifts = [builder.load(vec_ptr(cm_ptr, builder.add(
                        builder.add(cm_off_v, ir.Constant(ity, j * width)), cs_len_v)), align=1)
                        for j in range(nvec)]
                    store_rows(lambda val, old, j: builder.fmul(old, builder.fsub(val, shifts[j])))
                with plain:
                    store_rows(lambda val, old, j: builder.select(do_acc, builder.fadd(val, old),
                                                                  val))
            return context.get_dummy_value()

        return sig, codegen

    mk_block.__name__ = mk_block.__qualname__ = f"mk_block_{nvec}"
    return intrinsic(mk_block)


mk_block = _micro_kernel(NVEC)
mk_block_one = _micro_kernel(1)   # one vector of columns: the remainder of a panel


@intrinsic
def simd_lanes(typingctx, arr):
    """Number of columns a micro-tile covers for ``arr``'s dtype (NVEC vectors)."""
    if not isinstance(arr, types.Array):
        return None
    n = NVEC * lanes(arr.dtype)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, n)

    return types.intp(arr), codegen


@njit(cache=True, fastmath=FASTMATH, inline="always")
def gemm_block(C, c_off, ldc, A, a_off, sa_r, sa_c, Bm, b_off, ldb, m, n, kdim, mode, cs,
               cs_len):
    """C[i, j] (+)= sum_k A[a_off + i sa_r + k sa_c] B[b_off + k ldb + j] for i < m, j < n.

    C, A, Bm are 1-D contiguous arrays (flat views) addressed through element offsets;
    micro-tiles of MR x NR run in :func:`mk_block`, then one of MR x one vector when that
    many columns are left (:func:`mk_block_one`), the last columns in plain loops.
    ``mode``: 0 (C = A B) or ACCUMULATE (C += A B), plus the column-state bits of
    :func:`mk_block` (COLUMN_MAX, EXP_SHIFTED) on ``cs`` = [colmax | shift | sums], segments
    of ``cs_len`` >= n entries (unused without those bits; EXP_NO_SUMS drops the sums), or
    GRAD_SOFTMAX alone (C = C (A B - shift), reading only the shift segment).
    """
    accumulate = mode & ACCUMULATE
    nr = simd_lanes(C)
    nfull = n - n % nr
    for j0 in range(0, nfull, nr):
        for i0 in range(0, m, MR):
            mk_block(C, c_off + i0 * ldc + j0, ldc, A, a_off + i0 * sa_r, sa_r, sa_c,
                     Bm, b_off + j0, ldb, kdim, min(MR, m - i0), mode, cs, j0, cs_len)
    width = nr // NVEC
    if n - nfull >= width:
        for i0 in range(0, m, MR):
            mk_block_one(C, c_off + i0 * ldc + nfull, ldc, A, a_off + i0 * sa_r, sa_r, sa_c,
                         Bm, b_off + nfull, ldb, kdim, min(MR, m - i0), mode, cs, nfull, cs_len)
        nfull += width
    if nfull < n:
        for i in range(m):
            for j in range(nfull, n):
                s = C.dtype.type(0)
                for k in range(kdim):
                    s += A[a_off + i * sa_r + k * sa_c] * Bm[b_off + k * ldb + j]
                idx = c_off + i * ldc + j
                if mode & GRAD_SOFTMAX:
                    s = C[idx] * (s - cs[cs_len + j])
                elif accumulate:
                    s = C[idx] + s
                if mode & COLUMN_MAX and s > cs[j]:
                    cs[j] = s
                if mode & EXP_SHIFTED:
                    e = fexp(s - cs[cs_len + j])
                    if not mode & EXP_NO_SUMS:
                        cs[2 * cs_len + j] += e + s * 0
                    s = e
                C[idx] = s


@intrinsic
def prefetch(typingctx, arr, index):
    """Hint the CPU to bring the cache line of ``arr.flat[index]`` (C-contiguous ``arr``)
    into L1 (``llvm.prefetch``, read, high locality).  Never faults, whatever the index."""
    if not (isinstance(arr, types.Array) and arr.layout == "C"
            and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        arr_v, index_v = args
        data = context.make_array(arr)(context, builder, arr_v).data
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
            "llvm.prefetch.p0")
        address = builder.bitcast(builder.gep(data, [index_v]), byte_ptr)
        builder.call(fn, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, types.intp), codegen


@njit(cache=True, inline="always")
def prefetch_row(x, row):
    """Prefetch every cache line of row ``row`` (``x[row]``) of the C-contiguous array ``x``."""
    width = x.size // x.shape[0]
    step = 64 // x.itemsize
    for k in range(0, width, step):
        prefetch(x, row * width + k)


@intrinsic
def claim_next(typingctx, counter):
    """Atomically ``old = counter[0]; counter[0] += 1`` and return ``old`` (int64 array):
    a shared task counter, so that workers take the next task when they are free instead
    of a fixed share (a worker slowed by another process no longer holds up the rest)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(counter)(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen
