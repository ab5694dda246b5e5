! Fortran interface to insitu, over the C ABI (ffi-c/include/insitu.h).
!
! Every procedure takes an optional `ierr`: when present it receives the status
! (INSITU_STATUS_OK on success) and the program goes on; when absent, a failure prints
! the message and stops -- the only place insitu ever stops a program.
!
! Arrays: put_tensor / get_tensor are generic over integer(int8/16/32/64), real(real32/64)
! and logical, ranks 1 to 7. With the default layout (INSITU_LAYOUT_NATURAL) an array
! keeps its indexing everywhere: a(i,j) is arr[i-1, j-1] in Python and t[i-1][j-1] in C
! (one reordering copy). INSITU_LAYOUT_CONTIGUOUS stores the column-major bytes as they
! are, with the dims reversed (no reordering).
module insitu
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: int8, int16, int32, int64, real32, real64, error_unit
  implicit none
  private

  public :: insitu_client, insitu_last_error, insitu_check

  integer, parameter, public :: INSITU_LAYOUT_NATURAL = 0
  integer, parameter, public :: INSITU_LAYOUT_CONTIGUOUS = 1

  ! Status values (insitu_status in insitu.h).
  integer, parameter, public :: INSITU_STATUS_OK = 0
  integer, parameter, public :: INSITU_STATUS_BAD_INPUT = 1
  integer, parameter, public :: INSITU_STATUS_NOT_FOUND = 2
  integer, parameter, public :: INSITU_STATUS_WRONG_TYPE = 3
  integer, parameter, public :: INSITU_STATUS_OUT_OF_MEMORY = 4
  integer, parameter, public :: INSITU_STATUS_LIMIT_EXCEEDED = 5
  integer, parameter, public :: INSITU_STATUS_IO = 6
  integer, parameter, public :: INSITU_STATUS_PROTOCOL = 7
  integer, parameter, public :: INSITU_STATUS_AUTH = 8
  integer, parameter, public :: INSITU_STATUS_TIMEOUT = 9
  integer, parameter, public :: INSITU_STATUS_UNSUPPORTED = 10
  integer, parameter, public :: INSITU_STATUS_SERVER = 11
  integer, parameter, public :: INSITU_STATUS_INTERNAL = 12
  integer, parameter, public :: INSITU_STATUS_NULL_ARGUMENT = 13
  integer, parameter, public :: INSITU_STATUS_INVALID_UTF8 = 14

  ! Element types (insitu_dtype in insitu.h).
  integer(c_int), parameter :: INSITU_DTYPE_FLOAT = 1, INSITU_DTYPE_DOUBLE = 2, &
    INSITU_DTYPE_INT8 = 3, INSITU_DTYPE_INT16 = 4, INSITU_DTYPE_INT32 = 5, &
    INSITU_DTYPE_INT64 = 6, INSITU_DTYPE_BOOL = 9

  !> A connection ("inproc", "unix:///path", "host:port") and its key prefixes.
  type :: insitu_client
    type(c_ptr), private :: p = c_null_ptr
  contains
    procedure :: connect => client_connect
    procedure :: close => client_close
    procedure :: tensor_exists => client_tensor_exists
    procedure :: delete_tensor => client_delete_tensor
    procedure :: poll_tensor => client_poll_tensor
    procedure :: set_model_from_file => client_set_model_from_file
    procedure :: run_model => client_run_model
    procedure, private :: put_raw
    procedure, private :: get_raw
    include "insitu_bindings.inc"
    final :: client_final
  end type insitu_client

  interface
    function c_connect(address, address_len, out) bind(C, name="insitu_client_connect") result(s)
      import :: c_char, c_size_t, c_ptr, c_int
      character(kind=c_char), intent(in) :: address(*)
      integer(c_size_t), value :: address_len
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_connect

    subroutine c_client_free(client) bind(C, name="insitu_client_free")
      import :: c_ptr
      type(c_ptr), value :: client
    end subroutine c_client_free

    function c_last_error_message(buf, cap) bind(C, name="insitu_last_error_message") result(n)
      import :: c_char, c_size_t
      character(kind=c_char), intent(out) :: buf(*)
      integer(c_size_t), value :: cap
      integer(c_size_t) :: n
    end function c_last_error_message

    function c_put(client, name, name_len, data, data_len, dtype, dims, ndims) &
        bind(C, name="insitu_client_put_tensor") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      type(c_ptr), value :: data
      integer(c_size_t), value :: data_len
      integer(c_int), value :: dtype
      integer(c_size_t), intent(in) :: dims(*)
      integer(c_size_t), value :: ndims
      integer(c_int) :: s
    end function c_put

    function c_put_fortran(client, name, name_len, data, data_len, dtype, dims, ndims) &
        bind(C, name="insitu_client_put_tensor_fortran") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      type(c_ptr), value :: data
      integer(c_size_t), value :: data_len
      integer(c_int), value :: dtype
      integer(c_size_t), intent(in) :: dims(*)
      integer(c_size_t), value :: ndims
      integer(c_int) :: s
    end function c_put_fortran

    function c_unpack(client, name, name_len, dtype, buf, buf_len, dims, dims_cap, ndims) &
        bind(C, name="insitu_client_unpack_tensor") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int), value :: dtype
      type(c_ptr), value :: buf
      integer(c_size_t), value :: buf_len
      integer(c_size_t), intent(out) :: dims(*)
      integer(c_size_t), value :: dims_cap
      integer(c_size_t), intent(out) :: ndims
      integer(c_int) :: s
    end function c_unpack

    function c_unpack_fortran(client, name, name_len, dtype, buf, buf_len, dims, dims_cap, ndims) &
        bind(C, name="insitu_client_unpack_tensor_fortran") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int), value :: dtype
      type(c_ptr), value :: buf
      integer(c_size_t), value :: buf_len
      integer(c_size_t), intent(out) :: dims(*)
      integer(c_size_t), value :: dims_cap
      integer(c_size_t), intent(out) :: ndims
      integer(c_int) :: s
    end function c_unpack_fortran

    function c_name_query(client, name, name_len, out) bind(C, name="insitu_client_tensor_exists") result(s)
      import :: c_ptr, c_char, c_size_t, c_int, c_bool
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      logical(c_bool), intent(out) :: out
      integer(c_int) :: s
    end function c_name_query

    function c_delete(client, name, name_len) bind(C, name="insitu_client_delete_tensor") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int) :: s
    end function c_delete

    function c_poll(client, name, name_len, interval_ms, tries, out) &
        bind(C, name="insitu_client_poll_tensor") result(s)
      import :: c_ptr, c_char, c_size_t, c_int, c_bool, c_int64_t, c_int32_t
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int64_t), value :: interval_ms
      integer(c_int32_t), value :: tries
      logical(c_bool), intent(out) :: out
      integer(c_int) :: s
    end function c_poll

    function c_set_model_from_file(client, name, name_len, path, path_len, device, device_len, &
        batch_size, min_batch_size, min_batch_timeout_ms) &
        bind(C, name="insitu_client_set_model_from_file") result(s)
      import :: c_ptr, c_char, c_size_t, c_int, c_int64_t
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*), path(*), device(*)
      integer(c_size_t), value :: name_len, path_len, device_len, batch_size, min_batch_size
      integer(c_int64_t), value :: min_batch_timeout_ms
      integer(c_int) :: s
    end function c_set_model_from_file

    function c_run_model(client, name, name_len, inputs, input_lens, n_inputs, outputs, output_lens, n_outputs) &
        bind(C, name="insitu_client_run_model") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      type(c_ptr), intent(in) :: inputs(*)
      integer(c_size_t), intent(in) :: input_lens(*)
      integer(c_size_t), value :: n_inputs
      type(c_ptr), intent(in) :: outputs(*)
      integer(c_size_t), intent(in) :: output_lens(*)
      integer(c_size_t), value :: n_outputs
      integer(c_int) :: s
    end function c_run_model
  end interface

  !> A message for failures detected on the Fortran side (e.g. an array of the wrong shape).
  character(len=:), allocatable :: fortran_error

contains

  !> The message of the last failure on this thread.
  function insitu_last_error() result(msg)
    character(len=:), allocatable :: msg
    character(kind=c_char) :: buf(1024)
    integer(c_size_t) :: n
    integer :: i
    if (allocated(fortran_error)) then
      msg = fortran_error
      return
    end if
    n = c_last_error_message(buf, int(size(buf), c_size_t))
    n = min(n, int(size(buf) - 1, c_size_t))
    allocate(character(len=n) :: msg)
    do i = 1, int(n)
      msg(i:i) = buf(i)
    end do
  end function insitu_last_error

  !> Report a status: into `ierr` when present, else print the message and stop on failure.
  subroutine insitu_check(status, ierr)
    integer, intent(in) :: status
    integer, optional, intent(out) :: ierr
    if (present(ierr)) then
      ierr = status
      return
    end if
    if (status /= INSITU_STATUS_OK) then
      write(error_unit, '(a, i0, a, a)') 'insitu: error ', status, ': ', insitu_last_error()
      error stop 1
    end if
  end subroutine insitu_check

  subroutine client_connect(self, address, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: address
    integer, optional, intent(out) :: ierr
    type(c_ptr) :: p
    integer :: status
    if (allocated(fortran_error)) deallocate(fortran_error)
    status = c_connect(address, len(address, kind=c_size_t), p)
    if (status == INSITU_STATUS_OK) then
      call c_client_free(self%p)
      self%p = p
    end if
    call insitu_check(status, ierr)
  end subroutine client_connect

  subroutine client_close(self)
    class(insitu_client), intent(inout) :: self
    call c_client_free(self%p)
    self%p = c_null_ptr
  end subroutine client_close

  subroutine client_final(self)
    type(insitu_client), intent(inout) :: self
    call c_client_free(self%p)
    self%p = c_null_ptr
  end subroutine client_final

  subroutine put_raw(self, name, data, nbytes, dtype, dims, layout, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int), intent(in) :: dtype
    integer(c_size_t), intent(in) :: dims(:)
    integer, optional, intent(in) :: layout
    integer, optional, intent(out) :: ierr
    integer :: status
    if (allocated(fortran_error)) deallocate(fortran_error)
    if (contiguous_layout(layout)) then
      status = c_put(self%p, name, len(name, kind=c_size_t), data, nbytes, dtype, &
                     dims(size(dims):1:-1), size(dims, kind=c_size_t))
    else
      status = c_put_fortran(self%p, name, len(name, kind=c_size_t), data, nbytes, dtype, &
                             dims, size(dims, kind=c_size_t))
    end if
    call insitu_check(status, ierr)
  end subroutine put_raw

  !> Unpack into `data` and check the tensor's dims against the array's shape; the status
  !> goes to `status` (the caller reports it after converting logical arrays).
  subroutine get_raw(self, name, data, nbytes, dtype, dims, layout, status)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int), intent(in) :: dtype
    integer(c_size_t), intent(in) :: dims(:)
    integer, optional, intent(in) :: layout
    integer, intent(out) :: status
    integer(c_size_t) :: got(16), n, want(size(dims))
    if (allocated(fortran_error)) deallocate(fortran_error)
    if (contiguous_layout(layout)) then
      status = c_unpack(self%p, name, len(name, kind=c_size_t), dtype, data, nbytes, got, 16_c_size_t, n)
      want = dims(size(dims):1:-1)
    else
      status = c_unpack_fortran(self%p, name, len(name, kind=c_size_t), dtype, data, nbytes, got, 16_c_size_t, n)
      want = dims
    end if
    if (status /= INSITU_STATUS_OK) return
    if (n /= size(dims, kind=c_size_t)) then
      status = INSITU_STATUS_BAD_INPUT
    else if (any(got(1:n) /= want)) then
      status = INSITU_STATUS_BAD_INPUT
    end if
    if (status /= INSITU_STATUS_OK) then
      fortran_error = "tensor '" // name // "' does not have the array's shape"
    end if
  end subroutine get_raw

  logical function contiguous_layout(layout)
    integer, optional, intent(in) :: layout
    contiguous_layout = .false.
    if (present(layout)) contiguous_layout = layout == INSITU_LAYOUT_CONTIGUOUS
  end function contiguous_layout

  logical function client_tensor_exists(self, name, ierr) result(exists)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, optional, intent(out) :: ierr
    logical(c_bool) :: out
    integer :: status
    out = .false.
    status = c_name_query(self%p, name, len(name, kind=c_size_t), out)
    exists = out
    call insitu_check(status, ierr)
  end function client_tensor_exists

  subroutine client_delete_tensor(self, name, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, optional, intent(out) :: ierr
    call insitu_check(c_delete(self%p, name, len(name, kind=c_size_t)), ierr)
  end subroutine client_delete_tensor

  logical function client_poll_tensor(self, name, interval_ms, tries, ierr) result(found)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, intent(in) :: interval_ms, tries
    integer, optional, intent(out) :: ierr
    logical(c_bool) :: out
    integer :: status
    out = .false.
    status = c_poll(self%p, name, len(name, kind=c_size_t), int(interval_ms, c_int64_t), &
                    int(tries, c_int32_t), out)
    found = out
    call insitu_check(status, ierr)
  end function client_poll_tensor

  subroutine client_set_model_from_file(self, name, path, device, batch_size, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name, path
    character(len=*), optional, intent(in) :: device
    integer, optional, intent(in) :: batch_size
    integer, optional, intent(out) :: ierr
    character(len=:), allocatable :: dev
    integer(c_size_t) :: batch
    dev = "CPU"
    if (present(device)) dev = device
    batch = 0
    if (present(batch_size)) batch = int(batch_size, c_size_t)
    call insitu_check(c_set_model_from_file(self%p, name, len(name, kind=c_size_t), path, &
                      len(path, kind=c_size_t), dev, len(dev, kind=c_size_t), batch, 0_c_size_t, &
                      0_c_int64_t), ierr)
  end subroutine client_set_model_from_file

  !> Run a model on stored tensors; `inputs` and `outputs` name them (trailing blanks
  !> are not part of a name).
  subroutine client_run_model(self, name, inputs, outputs, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    character(len=*), intent(in), target :: inputs(:), outputs(:)
    integer, optional, intent(out) :: ierr
    type(c_ptr) :: in_ptrs(size(inputs)), out_ptrs(size(outputs))
    integer(c_size_t) :: in_lens(size(inputs)), out_lens(size(outputs))
    integer :: i
    do i = 1, size(inputs)
      in_ptrs(i) = c_loc(inputs(i))
      in_lens(i) = len_trim(inputs(i), kind=c_size_t)
    end do
    do i = 1, size(outputs)
      out_ptrs(i) = c_loc(outputs(i))
      out_lens(i) = len_trim(outputs(i), kind=c_size_t)
    end do
    call insitu_check(c_run_model(self%p, name, len(name, kind=c_size_t), in_ptrs, in_lens, &
                      size(inputs, kind=c_size_t), out_ptrs, out_lens, size(outputs, kind=c_size_t)), ierr)
  end subroutine client_run_model

  include "insitu_arrays.inc"

end module insitu
