! Models ONNX Runtime accepts whatever their declared shapes, run from Fortran: an input
! of unknown rank, symbolic and partly known dims, an input with a default, and a
! scikit-learn classifier with its ZipMap output (label and per-class probabilities).
! Each reference case -- inputs and onnxruntime's outputs, listed in
! $INSITU_TEST_MODELS/manifest.txt by core/tests/models/gen_models.py -- is put as
! Fortran arrays (natural layout: a(i,j,k) is the reference's [i-1][j-1][k-1]), run with
! run_model, read back and compared element by element, in process and over TCP.
! Run by CTest; prints "Fortran models: all checks passed".
program test_models
  use, intrinsic :: iso_fortran_env, only: int64, real32
  use insitu
  implicit none
  type(insitu_client) :: sim, tcp
  type(insitu_server) :: server
  character(len=1024) :: dir
  character(len=32) :: address
  integer :: failures, status, checked

  failures = 0
  checked = 0
  call get_environment_variable("INSITU_TEST_MODELS", dir, status=status)
  if (status /= 0) then
    print '(a)', "INSITU_TEST_MODELS must name a directory of generated models"
    error stop 1
  end if

  call sim%connect("inproc")
  call run_all(sim, "inproc")
  call sim%start_server(server, tcp_address="127.0.0.1:0")
  write(address, '(a, i0)') "127.0.0.1:", server%tcp_port()
  call tcp%connect(trim(address))
  call run_all(tcp, "tcp")
  call tcp%close()
  call server%stop()

  if (checked /= 2 * 2 * 5) call fail("every reference output was compared")
  if (failures > 0) then
    print '(i0, a)', failures, " checks failed"
    error stop 1
  end if
  print '(a)', "Fortran models: all checks passed"

contains

  subroutine run_all(c, mode)
    type(insitu_client), intent(inout) :: c
    character(len=*), intent(in) :: mode
    integer :: k
    call c%set_model_from_file("unknown_rank", trim(dir) // "/unknown_rank.onnx")
    call c%set_model_from_file("symbolic_dims", trim(dir) // "/symbolic_dims.onnx")
    call c%set_model_from_file("optional_input", trim(dir) // "/optional_input.onnx")
    call c%set_model_from_file("zipmap", trim(dir) // "/zipmap.onnx")
    do k = 0, 1
      call unknown_rank(c, mode, k)
      call symbolic_dims(c, mode, k)
      call optional_input(c, mode, k)
      call zipmap(c, mode, k)
    end do
  end subroutine run_all

  ! x(n,2,3) -> 2x+1, any rank accepted by the model.
  subroutine unknown_rank(c, mode, k)
    type(insitu_client), intent(inout) :: c
    character(len=*), intent(in) :: mode
    integer, intent(in) :: k
    real(real32), allocatable :: x(:,:,:), want(:,:,:), got(:,:,:), buf(:)
    integer(int64), allocatable :: dims(:)
    call load_real("unknown_rank", k, "in", 0, buf, dims)
    x = reshape(buf, [dims(1), dims(2), dims(3)], order=[3, 2, 1])
    call load_real("unknown_rank", k, "out", 0, buf, dims)
    want = reshape(buf, [dims(1), dims(2), dims(3)], order=[3, 2, 1])
    allocate(got, mold=want)
    call c%put_tensor("ur_x", x)
    call c%run_model("unknown_rank", ["ur_x"], ["ur_y"])
    call c%get_tensor("ur_y", got)
    call check_real(mode // " unknown_rank", reshape(got, [size(got)]), reshape(want, [size(want)]))
  end subroutine unknown_rank

  ! x(batch,steps,4) -> y(batch,4)
  subroutine symbolic_dims(c, mode, k)
    type(insitu_client), intent(inout) :: c
    character(len=*), intent(in) :: mode
    integer, intent(in) :: k
    real(real32), allocatable :: x(:,:,:), want(:,:), got(:,:), buf(:)
    integer(int64), allocatable :: dims(:)
    call load_real("symbolic_dims", k, "in", 0, buf, dims)
    x = reshape(buf, [dims(1), dims(2), dims(3)], order=[3, 2, 1])
    call load_real("symbolic_dims", k, "out", 0, buf, dims)
    want = reshape(buf, [dims(1), dims(2)], order=[2, 1])
    allocate(got, mold=want)
    call c%put_tensor("sd_x", x)
    call c%run_model("symbolic_dims", ["sd_x"], ["sd_y"])
    call c%get_tensor("sd_y", got)
    call check_real(mode // " symbolic_dims", reshape(got, [size(got)]), reshape(want, [size(want)]))
  end subroutine symbolic_dims

  ! x(N,3) times a scale the model holds as the default of its second input.
  subroutine optional_input(c, mode, k)
    type(insitu_client), intent(inout) :: c
    character(len=*), intent(in) :: mode
    integer, intent(in) :: k
    real(real32), allocatable :: x(:,:), want(:,:), got(:,:), buf(:)
    integer(int64), allocatable :: dims(:)
    call load_real("optional_input", k, "in", 0, buf, dims)
    x = reshape(buf, [dims(1), dims(2)], order=[2, 1])
    call load_real("optional_input", k, "out", 0, buf, dims)
    want = reshape(buf, [dims(1), dims(2)], order=[2, 1])
    allocate(got, mold=want)
    call c%put_tensor("oi_x", x)
    call c%run_model("optional_input", ["oi_x"], ["oi_y"])
    call c%get_tensor("oi_y", got)
    call check_real(mode // " optional_input", reshape(got, [size(got)]), reshape(want, [size(want)]))
  end subroutine optional_input

  ! x(n,4) -> label(n) and probabilities(n,3), one column per class in ascending order.
  subroutine zipmap(c, mode, k)
    type(insitu_client), intent(inout) :: c
    character(len=*), intent(in) :: mode
    integer, intent(in) :: k
    real(real32), allocatable :: x(:,:), want(:,:), got(:,:), buf(:)
    integer(int64), allocatable :: label(:), want_label(:), dims(:)
    integer :: ierr
    call load_real("zipmap", k, "in", 0, buf, dims)
    x = reshape(buf, [dims(1), dims(2)], order=[2, 1])
    call load_int64("zipmap", k, "out", 0, want_label, dims)
    call load_real("zipmap", k, "out", 1, buf, dims)
    want = reshape(buf, [dims(1), dims(2)], order=[2, 1])
    allocate(got, mold=want)
    allocate(label, mold=want_label)
    call c%put_tensor("zm_x", x)
    call c%run_model("zipmap", ["zm_x"], ["zm_label", "zm_probs"])
    call c%get_tensor("zm_label", label, ierr=ierr)
    if (ierr /= INSITU_STATUS_OK) call fail(mode // " zipmap label read back")
    checked = checked + 1
    if (ierr == INSITU_STATUS_OK .and. any(label /= want_label)) call fail(mode // " zipmap label")
    call c%get_tensor("zm_probs", got)
    call check_real(mode // " zipmap probabilities", reshape(got, [size(got)]), reshape(want, [size(want)]))
  end subroutine zipmap

  subroutine check_real(what, got, want)
    character(len=*), intent(in) :: what
    real(real32), intent(in) :: got(:), want(:)
    checked = checked + 1
    if (size(got) /= size(want)) then
      call fail(what // ": size")
    else if (any(abs(got - want) > 1e-5 + 1e-5 * abs(want))) then
      call fail(what // ": elements differ from onnxruntime's")
    end if
  end subroutine check_real

  ! The manifest line of one reference tensor: its dims and file.
  subroutine find(model, k, kind, idx, dims, file)
    character(len=*), intent(in) :: model, kind
    integer, intent(in) :: k, idx
    integer(int64), allocatable, intent(out) :: dims(:)
    character(len=:), allocatable, intent(out) :: file
    character(len=64) :: m, t, dtype
    character(len=256) :: f
    integer(int64) :: d(8)
    integer :: u, ios, kk, ii, nd, j
    open(newunit=u, file=trim(dir) // "/manifest.txt", status="old", action="read")
    do
      read(u, *, iostat=ios) m, kk, t, ii, dtype, nd, (d(j), j = 1, min(nd, 8)), f
      if (ios /= 0) exit
      if (trim(m) == model .and. kk == k .and. trim(t) == kind .and. ii == idx) then
        dims = d(1:nd)
        file = trim(dir) // "/" // trim(f)
        close(u)
        return
      end if
    end do
    close(u)
    print '(a, i0, 3a, i0)', "no reference tensor ", k, " ", kind, " ", idx
    error stop 1
  end subroutine find

  subroutine load_real(model, k, kind, idx, buf, dims)
    character(len=*), intent(in) :: model, kind
    integer, intent(in) :: k, idx
    real(real32), allocatable, intent(out) :: buf(:)
    integer(int64), allocatable, intent(out) :: dims(:)
    character(len=:), allocatable :: file
    integer :: u
    call find(model, k, kind, idx, dims, file)
    allocate(buf(product(dims)))
    open(newunit=u, file=file, access="stream", form="unformatted", status="old", action="read")
    read(u) buf
    close(u)
  end subroutine load_real

  subroutine load_int64(model, k, kind, idx, buf, dims)
    character(len=*), intent(in) :: model, kind
    integer, intent(in) :: k, idx
    integer(int64), allocatable, intent(out) :: buf(:)
    integer(int64), allocatable, intent(out) :: dims(:)
    character(len=:), allocatable :: file
    integer :: u
    call find(model, k, kind, idx, dims, file)
    allocate(buf(product(dims)))
    open(newunit=u, file=file, access="stream", form="unformatted", status="old", action="read")
    read(u) buf
    close(u)
  end subroutine load_int64

  subroutine fail(what)
    character(len=*), intent(in) :: what
    print '(4a)', "FAILED: ", what, " -- ", insitu_last_error()
    failures = failures + 1
  end subroutine fail
end program test_models
