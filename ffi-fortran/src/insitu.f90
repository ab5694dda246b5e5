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

  public :: insitu_client, insitu_dataset, insitu_server, insitu_last_error, insitu_check

  integer, parameter, public :: INSITU_LAYOUT_NATURAL = 0
  integer, parameter, public :: INSITU_LAYOUT_CONTIGUOUS = 1

  ! Status, dtype and metadata-type values, generated from insitu.h by gen_arrays.py.
  include 'insitu_constants.inc'

  !> A connection ("inproc", "unix:///path", "host:port") and its key prefixes. A client
  !> is not copied: `a = b` leaves `a` closed (calls on it fail with "client must not be
  !> NULL"); pass clients by reference.
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
    procedure :: put_dataset => client_put_dataset
    procedure :: get_dataset => client_get_dataset
    procedure :: delete_dataset => client_delete_dataset
    procedure :: dataset_exists => client_dataset_exists
    procedure :: poll_dataset => client_poll_dataset
    procedure :: append_to_list => client_append_to_list
    procedure :: get_list_length => client_get_list_length
    procedure :: poll_list_length => client_poll_list_length
    procedure :: get_datasets_from_list => client_get_datasets_from_list
    procedure :: get_dataset_list_range => client_get_dataset_list_range
    procedure :: start_server => client_start_server
    procedure, private :: put_raw
    procedure, private :: get_raw
    procedure, private :: client_assign
    generic :: assignment(=) => client_assign
    include "insitu_bindings.inc"
    final :: client_final
  end type insitu_client

  !> A server started by an "inproc" client on its own engine: other processes (Python
  !> training, analysis) connect to it while the simulation keeps its in-process speed.
  !> Stopped by `stop` or when it goes out of scope.
  type :: insitu_server
    type(c_ptr), private :: p = c_null_ptr
  contains
    procedure :: tcp_port => server_tcp_port
    procedure :: stop => server_stop
    procedure, private :: server_assign
    generic :: assignment(=) => server_assign
    final :: server_final
  end type insitu_server

  !> Named tensors and metadata stored and fetched as one (SmartRedis' DataSet, the same
  !> keys and bytes). `a = b` makes `a` a deep copy of `b`.
  type :: insitu_dataset
    type(c_ptr), private :: p = c_null_ptr
  contains
    procedure :: create => dataset_create
    procedure :: add_meta_string => dataset_add_meta_string
    procedure :: meta_string_count => dataset_meta_string_count
    procedure :: get_meta_string => dataset_get_meta_string
    procedure, private :: put_raw => dataset_put_raw
    procedure, private :: get_raw => dataset_get_raw
    procedure, private :: dataset_assign
    generic :: assignment(=) => dataset_assign
    include "insitu_dataset_bindings.inc"
    final :: dataset_final
  end type insitu_dataset

  ! Storing and unpacking tensors: the same signatures for a client and a dataset (the
  ! handle), row-major or column-major (the *_fortran functions).
  abstract interface
    function c_put_fn(handle, name, name_len, data, data_len, dtype, dims, ndims) bind(C) result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: handle
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      type(c_ptr), value :: data
      integer(c_size_t), value :: data_len
      integer(c_int), value :: dtype
      integer(c_size_t), intent(in) :: dims(*)
      integer(c_size_t), value :: ndims
      integer(c_int) :: s
    end function c_put_fn

    function c_unpack_fn(handle, name, name_len, dtype, buf, buf_len, dims, dims_cap, ndims) bind(C) result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: handle
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int), value :: dtype
      type(c_ptr), value :: buf
      integer(c_size_t), value :: buf_len
      integer(c_size_t), intent(out) :: dims(*)
      integer(c_size_t), value :: dims_cap
      integer(c_size_t), intent(out) :: ndims
      integer(c_int) :: s
    end function c_unpack_fn
  end interface
  procedure(c_put_fn), bind(C, name="insitu_client_put_tensor") :: c_put
  procedure(c_put_fn), bind(C, name="insitu_client_put_tensor_fortran") :: c_put_fortran
  procedure(c_put_fn), bind(C, name="insitu_dataset_add_tensor") :: c_ds_add
  procedure(c_put_fn), bind(C, name="insitu_dataset_add_tensor_fortran") :: c_ds_add_fortran
  procedure(c_unpack_fn), bind(C, name="insitu_client_unpack_tensor") :: c_unpack
  procedure(c_unpack_fn), bind(C, name="insitu_client_unpack_tensor_fortran") :: c_unpack_fortran
  procedure(c_unpack_fn), bind(C, name="insitu_dataset_unpack_tensor") :: c_ds_unpack
  procedure(c_unpack_fn), bind(C, name="insitu_dataset_unpack_tensor_fortran") :: c_ds_unpack_fortran

  interface
    function c_connect(address, address_len, out) bind(C, name="insitu_client_connect") result(s)
      import :: c_char, c_size_t, c_ptr, c_int
      character(kind=c_char), intent(in) :: address(*)
      integer(c_size_t), value :: address_len
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_connect

    function c_from_env(out) bind(C, name="insitu_client_from_env") result(s)
      import :: c_ptr, c_int
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_from_env

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

    ! Datasets and lists.
    function c_dataset_new(name, name_len, out) bind(C, name="insitu_dataset_new") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_dataset_new

    function c_dataset_clone(dataset, out) bind(C, name="insitu_dataset_clone") result(s)
      import :: c_ptr, c_int
      type(c_ptr), value :: dataset
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_dataset_clone

    subroutine c_dataset_free(dataset) bind(C, name="insitu_dataset_free")
      import :: c_ptr
      type(c_ptr), value :: dataset
    end subroutine c_dataset_free

    function c_ds_add_meta_scalar(dataset, name, name_len, type, value) &
        bind(C, name="insitu_dataset_add_meta_scalar") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: dataset
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int), value :: type
      type(c_ptr), value :: value
      integer(c_int) :: s
    end function c_ds_add_meta_scalar

    function c_ds_add_meta_string(dataset, name, name_len, value, value_len) &
        bind(C, name="insitu_dataset_add_meta_string") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: dataset
      character(kind=c_char), intent(in) :: name(*), value(*)
      integer(c_size_t), value :: name_len, value_len
      integer(c_int) :: s
    end function c_ds_add_meta_string

    function c_ds_get_meta_scalars(dataset, name, name_len, type, buf, cap, count) &
        bind(C, name="insitu_dataset_get_meta_scalars") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: dataset
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int), value :: type
      type(c_ptr), value :: buf
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: count
      integer(c_int) :: s
    end function c_ds_get_meta_scalars

    function c_ds_get_meta_string(dataset, name, name_len, index, buf, cap, len) &
        bind(C, name="insitu_dataset_get_meta_string") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: dataset
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len, index
      character(kind=c_char), intent(out) :: buf(*)
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
      integer(c_int) :: s
    end function c_ds_get_meta_string

    function c_ds_get_meta_count(dataset, name, name_len, count) &
        bind(C, name="insitu_dataset_get_meta_count") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: dataset
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_size_t), intent(out) :: count
      integer(c_int) :: s
    end function c_ds_get_meta_count

    function c_ds_get_meta_string_count(dataset, name, name_len, count) &
        bind(C, name="insitu_dataset_get_meta_string_count") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: dataset
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_size_t), intent(out) :: count
      integer(c_int) :: s
    end function c_ds_get_meta_string_count

    function c_put_dataset(client, dataset) bind(C, name="insitu_client_put_dataset") result(s)
      import :: c_ptr, c_int
      type(c_ptr), value :: client, dataset
      integer(c_int) :: s
    end function c_put_dataset

    function c_get_dataset(client, name, name_len, out) bind(C, name="insitu_client_get_dataset") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_get_dataset

    function c_delete_dataset(client, name, name_len) bind(C, name="insitu_client_delete_dataset") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int) :: s
    end function c_delete_dataset

    function c_dataset_exists(client, name, name_len, out) bind(C, name="insitu_client_dataset_exists") result(s)
      import :: c_ptr, c_char, c_size_t, c_int, c_bool
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      logical(c_bool), intent(out) :: out
      integer(c_int) :: s
    end function c_dataset_exists

    function c_poll_dataset(client, name, name_len, interval_ms, tries, out) &
        bind(C, name="insitu_client_poll_dataset") result(s)
      import :: c_ptr, c_char, c_size_t, c_int, c_bool, c_int64_t, c_int32_t
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: name(*)
      integer(c_size_t), value :: name_len
      integer(c_int64_t), value :: interval_ms
      integer(c_int32_t), value :: tries
      logical(c_bool), intent(out) :: out
      integer(c_int) :: s
    end function c_poll_dataset

    function c_append_to_list(client, list, list_len, dataset) &
        bind(C, name="insitu_client_append_to_list") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: list(*)
      integer(c_size_t), value :: list_len
      type(c_ptr), value :: dataset
      integer(c_int) :: s
    end function c_append_to_list

    function c_get_list_length(client, list, list_len, out) &
        bind(C, name="insitu_client_get_list_length") result(s)
      import :: c_ptr, c_char, c_size_t, c_int
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: list(*)
      integer(c_size_t), value :: list_len
      integer(c_size_t), intent(out) :: out
      integer(c_int) :: s
    end function c_get_list_length

    function c_poll_list_length(client, list, list_len, length, interval_ms, tries, out) &
        bind(C, name="insitu_client_poll_list_length") result(s)
      import :: c_ptr, c_char, c_size_t, c_int, c_bool, c_int64_t, c_int32_t
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: list(*)
      integer(c_size_t), value :: list_len, length
      integer(c_int64_t), value :: interval_ms
      integer(c_int32_t), value :: tries
      logical(c_bool), intent(out) :: out
      integer(c_int) :: s
    end function c_poll_list_length

    function c_get_dataset_list_range(client, list, list_len, start, end, out) &
        bind(C, name="insitu_client_get_dataset_list_range") result(s)
      import :: c_ptr, c_char, c_size_t, c_int, c_int64_t
      type(c_ptr), value :: client
      character(kind=c_char), intent(in) :: list(*)
      integer(c_size_t), value :: list_len
      integer(c_int64_t), value :: start, end
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_get_dataset_list_range

    function c_dataset_list_len(list) bind(C, name="insitu_dataset_list_len") result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: list
      integer(c_size_t) :: n
    end function c_dataset_list_len

    function c_dataset_list_get(list, index) bind(C, name="insitu_dataset_list_get") result(p)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: list
      integer(c_size_t), value :: index
      type(c_ptr) :: p
    end function c_dataset_list_get

    function c_start_server(client, unix_path, unix_path_len, tcp_address, tcp_address_len, out) &
        bind(C, name="insitu_client_start_server") result(s)
      import :: c_ptr, c_size_t, c_int
      type(c_ptr), value :: client, unix_path, tcp_address
      integer(c_size_t), value :: unix_path_len, tcp_address_len
      type(c_ptr), intent(out) :: out
      integer(c_int) :: s
    end function c_start_server

    function c_server_tcp_port(server) bind(C, name="insitu_server_tcp_port") result(port)
      import :: c_ptr, c_int16_t
      type(c_ptr), value :: server
      integer(c_int16_t) :: port
    end function c_server_tcp_port

    function c_server_free(server) bind(C, name="insitu_server_free") result(s)
      import :: c_ptr, c_int
      type(c_ptr), value :: server
      integer(c_int) :: s
    end function c_server_free

    subroutine c_dataset_list_free(list) bind(C, name="insitu_dataset_list_free")
      import :: c_ptr
      type(c_ptr), value :: list
    end subroutine c_dataset_list_free
  end interface

  !> A message for failures detected on the Fortran side (e.g. an array of the wrong
  !> shape), pending until the next status is reported; after that it stays the last
  !> error until a status from the C library is reported.
  character(len=:), allocatable :: fortran_error
  logical :: fortran_error_pending = .false.

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
    if (fortran_error_pending) then
      fortran_error_pending = .false.
    else if (allocated(fortran_error)) then
      deallocate(fortran_error)
    end if
    if (present(ierr)) then
      ierr = status
      return
    end if
    if (status /= INSITU_STATUS_OK) then
      write(error_unit, '(a, i0, a, a)') 'insitu: error ', status, ': ', insitu_last_error()
      error stop 1
    end if
  end subroutine insitu_check

  !> Connect to `address`; without one, to the address in the environment (SSDB, as
  !> SmartRedis clients read it).
  subroutine client_connect(self, address, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), optional, intent(in) :: address
    integer, optional, intent(out) :: ierr
    type(c_ptr) :: p
    integer :: status
    if (present(address)) then
      status = c_connect(address, len(address, kind=c_size_t), p)
    else
      status = c_from_env(p)
    end if
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

  !> `lhs = rhs` closes `lhs` (`c = c` changes nothing): a connection has one owner, as
  !> two would free it twice.
  subroutine client_assign(lhs, rhs)
    class(insitu_client), intent(inout) :: lhs
    class(insitu_client), intent(in) :: rhs
    if (c_associated(lhs%p, rhs%p)) return
    call c_client_free(lhs%p)
    lhs%p = c_null_ptr
  end subroutine client_assign

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
    call insitu_check(put_with(c_put, c_put_fortran, self%p, name, data, nbytes, dtype, dims, layout), ierr)
  end subroutine put_raw

  !> Store through `put` (row-major; the array's dims reversed) for the contiguous layout,
  !> else through `put_fortran` (column-major, the array's dims).
  integer function put_with(put, put_fortran, handle, name, data, nbytes, dtype, dims, layout) result(status)
    procedure(c_put_fn) :: put, put_fortran
    type(c_ptr), intent(in) :: handle, data
    character(len=*), intent(in) :: name
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int), intent(in) :: dtype
    integer(c_size_t), intent(in) :: dims(:)
    integer, optional, intent(in) :: layout
    if (contiguous_layout(layout)) then
      status = put(handle, name, len(name, kind=c_size_t), data, nbytes, dtype, &
                   dims(size(dims):1:-1), size(dims, kind=c_size_t))
    else
      status = put_fortran(handle, name, len(name, kind=c_size_t), data, nbytes, dtype, &
                           dims, size(dims, kind=c_size_t))
    end if
  end function put_with

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
    call unpack_with(c_unpack, c_unpack_fortran, self%p, name, data, nbytes, dtype, dims, layout, status)
  end subroutine get_raw

  !> Unpack through `unpack` (contiguous layout: dims reversed) or `unpack_fortran`, then
  !> check the tensor's dims against the array's shape.
  subroutine unpack_with(unpack, unpack_fortran, handle, name, data, nbytes, dtype, dims, layout, status)
    procedure(c_unpack_fn) :: unpack, unpack_fortran
    type(c_ptr), intent(in) :: handle, data
    character(len=*), intent(in) :: name
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int), intent(in) :: dtype
    integer(c_size_t), intent(in) :: dims(:)
    integer, optional, intent(in) :: layout
    integer, intent(out) :: status
    integer(c_size_t) :: got(16), n, want(size(dims))
    if (contiguous_layout(layout)) then
      status = unpack(handle, name, len(name, kind=c_size_t), dtype, data, nbytes, got, 16_c_size_t, n)
      want = dims(size(dims):1:-1)
    else
      status = unpack_fortran(handle, name, len(name, kind=c_size_t), dtype, data, nbytes, got, 16_c_size_t, n)
      want = dims
    end if
    call check_shape(name, got, n, want, status)
  end subroutine unpack_with

  !> After an unpack with status `status`: the tensor's dims `got(1:n)` must be `want`.
  subroutine check_shape(name, got, n, want, status)
    character(len=*), intent(in) :: name
    integer(c_size_t), intent(in) :: got(:), n, want(:)
    integer, intent(inout) :: status
    if (status /= INSITU_STATUS_OK) return
    if (n /= size(want, kind=c_size_t)) then
      status = INSITU_STATUS_BAD_INPUT
    else if (any(got(1:n) /= want)) then
      status = INSITU_STATUS_BAD_INPUT
    end if
    if (status /= INSITU_STATUS_OK) then
      call fortran_fail("tensor '" // name // "' does not have the array's shape")
    end if
  end subroutine check_shape

  !> Record a failure found on the Fortran side; the caller reports its status.
  subroutine fortran_fail(msg)
    character(len=*), intent(in) :: msg
    fortran_error = msg
    fortran_error_pending = .true.
  end subroutine fortran_fail

  !> `i` in decimal, without blanks.
  function itoa(i) result(s)
    integer, intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: buf
    write(buf, '(i0)') i
    s = trim(buf)
  end function itoa

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

  ! ----- datasets and lists -----

  !> Start an empty dataset called `name` (replacing what `self` held).
  subroutine dataset_create(self, name, ierr)
    class(insitu_dataset), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, optional, intent(out) :: ierr
    type(c_ptr) :: p
    integer :: status
    status = c_dataset_new(name, len(name, kind=c_size_t), p)
    if (status == INSITU_STATUS_OK) then
      call c_dataset_free(self%p)
      self%p = p
    end if
    call insitu_check(status, ierr)
  end subroutine dataset_create

  !> `lhs = rhs`: a deep copy (an empty rhs gives an empty lhs).
  subroutine dataset_assign(lhs, rhs)
    class(insitu_dataset), intent(inout) :: lhs
    class(insitu_dataset), intent(in) :: rhs
    type(c_ptr) :: p
    p = c_null_ptr
    if (c_associated(rhs%p)) then
      if (c_dataset_clone(rhs%p, p) /= INSITU_STATUS_OK) p = c_null_ptr
    end if
    call c_dataset_free(lhs%p)
    lhs%p = p
  end subroutine dataset_assign

  subroutine dataset_final(self)
    type(insitu_dataset), intent(inout) :: self
    call c_dataset_free(self%p)
    self%p = c_null_ptr
  end subroutine dataset_final

  subroutine dataset_put_raw(self, name, data, nbytes, dtype, dims, layout, ierr)
    class(insitu_dataset), intent(inout) :: self
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int), intent(in) :: dtype
    integer(c_size_t), intent(in) :: dims(:)
    integer, optional, intent(in) :: layout
    integer, optional, intent(out) :: ierr
    call insitu_check(put_with(c_ds_add, c_ds_add_fortran, self%p, name, data, nbytes, dtype, dims, layout), &
                      ierr)
  end subroutine dataset_put_raw

  subroutine dataset_get_raw(self, name, data, nbytes, dtype, dims, layout, status)
    class(insitu_dataset), intent(inout) :: self
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int), intent(in) :: dtype
    integer(c_size_t), intent(in) :: dims(:)
    integer, optional, intent(in) :: layout
    integer, intent(out) :: status
    call unpack_with(c_ds_unpack, c_ds_unpack_fortran, self%p, name, data, nbytes, dtype, dims, layout, status)
  end subroutine dataset_get_raw

  !> The number of values in metadata field `name`; `status` reports the lookup.
  integer(c_size_t) function meta_count(self, name, status) result(n)
    class(insitu_dataset), intent(in) :: self
    character(len=*), intent(in) :: name
    integer, intent(out) :: status
    n = 0
    status = c_ds_get_meta_count(self%p, name, len(name, kind=c_size_t), n)
  end function meta_count

  !> Append a string to metadata field `name`.
  subroutine dataset_add_meta_string(self, name, value, ierr)
    class(insitu_dataset), intent(inout) :: self
    character(len=*), intent(in) :: name, value
    integer, optional, intent(out) :: ierr
    call insitu_check(c_ds_add_meta_string(self%p, name, len(name, kind=c_size_t), value, &
                      len(value, kind=c_size_t)), ierr)
  end subroutine dataset_add_meta_string

  !> The number of strings in metadata field `name`.
  integer function dataset_meta_string_count(self, name, ierr) result(n)
    class(insitu_dataset), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, optional, intent(out) :: ierr
    integer(c_size_t) :: count
    count = 0
    call insitu_check(c_ds_get_meta_string_count(self%p, name, len(name, kind=c_size_t), count), ierr)
    n = int(count)
  end function dataset_meta_string_count

  !> String `index` (from 1) of metadata field `name`.
  function dataset_get_meta_string(self, name, index, ierr) result(value)
    class(insitu_dataset), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, intent(in) :: index
    integer, optional, intent(out) :: ierr
    character(len=:), allocatable :: value
    character(kind=c_char), allocatable :: buf(:)
    integer(c_size_t) :: n
    integer :: status, i
    n = 0
    status = INSITU_STATUS_BAD_INPUT
    if (index >= 1) status = c_ds_get_meta_string_count(self%p, name, len(name, kind=c_size_t), n)
    if (index < 1) then
      call fortran_fail("metadata string index must be 1 or more")
    else if (status == INSITU_STATUS_OK .and. index > n) then
      status = INSITU_STATUS_BAD_INPUT
      call fortran_fail("metadata field '" // name // "' has " // itoa(int(n)) // " strings, no string " // &
                        itoa(index))
    else if (status == INSITU_STATUS_OK) then
      ! Most strings fit 256 bytes; a longer one reports its length, and is read again.
      allocate(buf(256))
      status = c_ds_get_meta_string(self%p, name, len(name, kind=c_size_t), int(index - 1, c_size_t), &
                                    buf, size(buf, kind=c_size_t), n)
      if (status /= INSITU_STATUS_OK .and. n >= size(buf, kind=c_size_t)) then
        deallocate(buf)
        allocate(buf(n + 1))
        status = c_ds_get_meta_string(self%p, name, len(name, kind=c_size_t), int(index - 1, c_size_t), &
                                      buf, size(buf, kind=c_size_t), n)
      end if
    end if
    if (status /= INSITU_STATUS_OK) n = 0
    allocate(character(len=n) :: value)
    do i = 1, int(n)
      value(i:i) = buf(i)
    end do
    call insitu_check(status, ierr)
  end function dataset_get_meta_string

  !> Store a dataset: its tensors and metadata, under SmartRedis' keys.
  subroutine client_put_dataset(self, dataset, ierr)
    class(insitu_client), intent(inout) :: self
    type(insitu_dataset), intent(in) :: dataset
    integer, optional, intent(out) :: ierr
    call insitu_check(c_put_dataset(self%p, dataset%p), ierr)
  end subroutine client_put_dataset

  !> Fetch dataset `name` into `dataset` (replacing what it held).
  subroutine client_get_dataset(self, name, dataset, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    type(insitu_dataset), intent(inout) :: dataset
    integer, optional, intent(out) :: ierr
    type(c_ptr) :: p
    integer :: status
    status = c_get_dataset(self%p, name, len(name, kind=c_size_t), p)
    if (status == INSITU_STATUS_OK) then
      call c_dataset_free(dataset%p)
      dataset%p = p
    end if
    call insitu_check(status, ierr)
  end subroutine client_get_dataset

  subroutine client_delete_dataset(self, name, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, optional, intent(out) :: ierr
    call insitu_check(c_delete_dataset(self%p, name, len(name, kind=c_size_t)), ierr)
  end subroutine client_delete_dataset

  logical function client_dataset_exists(self, name, ierr) result(exists)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, optional, intent(out) :: ierr
    logical(c_bool) :: out
    integer :: status
    out = .false.
    status = c_dataset_exists(self%p, name, len(name, kind=c_size_t), out)
    exists = out
    call insitu_check(status, ierr)
  end function client_dataset_exists

  logical function client_poll_dataset(self, name, interval_ms, tries, ierr) result(found)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: name
    integer, intent(in) :: interval_ms, tries
    integer, optional, intent(out) :: ierr
    logical(c_bool) :: out
    integer :: status
    out = .false.
    status = c_poll_dataset(self%p, name, len(name, kind=c_size_t), int(interval_ms, c_int64_t), &
                            int(tries, c_int32_t), out)
    found = out
    call insitu_check(status, ierr)
  end function client_poll_dataset

  !> Append the name of `dataset` to aggregation list `list` (created on first use). The
  !> list refers to the dataset by name: store the dataset with put_dataset first.
  subroutine client_append_to_list(self, list, dataset, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: list
    type(insitu_dataset), intent(in) :: dataset
    integer, optional, intent(out) :: ierr
    call insitu_check(c_append_to_list(self%p, list, len(list, kind=c_size_t), dataset%p), ierr)
  end subroutine client_append_to_list

  integer function client_get_list_length(self, list, ierr) result(n)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: list
    integer, optional, intent(out) :: ierr
    integer(c_size_t) :: out
    out = 0
    call insitu_check(c_get_list_length(self%p, list, len(list, kind=c_size_t), out), ierr)
    n = int(out)
  end function client_get_list_length

  !> Wait until list `list` holds exactly `length` datasets (SmartRedis' poll_list_length).
  logical function client_poll_list_length(self, list, length, interval_ms, tries, ierr) result(reached)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: list
    integer, intent(in) :: length, interval_ms, tries
    integer, optional, intent(out) :: ierr
    logical(c_bool) :: out
    integer :: status
    out = .false.
    status = c_poll_list_length(self%p, list, len(list, kind=c_size_t), int(length, c_size_t), &
                                int(interval_ms, c_int64_t), int(tries, c_int32_t), out)
    reached = out
    call insitu_check(status, ierr)
  end function client_poll_list_length

  !> Every dataset of aggregation list `list`, oldest first.
  subroutine client_get_datasets_from_list(self, list, datasets, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: list
    type(insitu_dataset), allocatable, intent(out) :: datasets(:)
    integer, optional, intent(out) :: ierr
    call self%get_dataset_list_range(list, 0, -1, datasets, ierr)
  end subroutine client_get_datasets_from_list

  !> Datasets `start` to `end` of aggregation list `list`, counted as SmartRedis does:
  !> from 0, both ends included, negative values from the end (-1 is the last).
  subroutine client_get_dataset_list_range(self, list, start, end, datasets, ierr)
    class(insitu_client), intent(inout) :: self
    character(len=*), intent(in) :: list
    integer, intent(in) :: start, end
    type(insitu_dataset), allocatable, intent(out) :: datasets(:)
    integer, optional, intent(out) :: ierr
    type(c_ptr) :: l
    integer :: status, i
    status = c_get_dataset_list_range(self%p, list, len(list, kind=c_size_t), int(start, c_int64_t), &
                                      int(end, c_int64_t), l)
    if (status /= INSITU_STATUS_OK) then
      allocate(datasets(0))
      call insitu_check(status, ierr)
      return
    end if
    allocate(datasets(c_dataset_list_len(l)))
    do i = 1, size(datasets)
      status = c_dataset_clone(c_dataset_list_get(l, int(i - 1, c_size_t)), datasets(i)%p)
      if (status /= INSITU_STATUS_OK) exit
    end do
    call c_dataset_list_free(l)
    if (status /= INSITU_STATUS_OK) then
      deallocate(datasets)
      allocate(datasets(0))
    end if
    call insitu_check(status, ierr)
  end subroutine client_get_dataset_list_range

  !> Serve this inproc client's engine on a Unix socket (`unix_path`) and/or TCP
  !> (`tcp_address`, "host:port"; port 0 takes a free one, see server%tcp_port()).
  subroutine client_start_server(self, server, unix_path, tcp_address, ierr)
    class(insitu_client), intent(inout) :: self
    type(insitu_server), intent(inout) :: server
    character(len=*), optional, intent(in), target :: unix_path, tcp_address
    integer, optional, intent(out) :: ierr
    type(c_ptr) :: up, tp, p
    integer(c_size_t) :: ul, tl
    integer :: status
    up = c_null_ptr
    tp = c_null_ptr
    ul = 0
    tl = 0
    if (present(unix_path)) then
      up = c_loc(unix_path)
      ul = len(unix_path, kind=c_size_t)
    end if
    if (present(tcp_address)) then
      tp = c_loc(tcp_address)
      tl = len(tcp_address, kind=c_size_t)
    end if
    status = c_start_server(self%p, up, ul, tp, tl, p)
    if (status == INSITU_STATUS_OK) then
      status = c_server_free(server%p)
      server%p = p
    end if
    call insitu_check(status, ierr)
  end subroutine client_start_server

  !> The TCP port the server listens on (0 without TCP).
  integer function server_tcp_port(self) result(port)
    class(insitu_server), intent(in) :: self
    port = iand(int(c_server_tcp_port(self%p)), 65535)
  end function server_tcp_port

  !> Stop serving (requests in flight finish first). Stopping a stopped server is a no-op.
  subroutine server_stop(self, ierr)
    class(insitu_server), intent(inout) :: self
    integer, optional, intent(out) :: ierr
    integer :: status
    status = c_server_free(self%p)
    self%p = c_null_ptr
    call insitu_check(status, ierr)
  end subroutine server_stop

  !> `lhs = rhs` stops `lhs` (`s = s` changes nothing): a server has one owner.
  subroutine server_assign(lhs, rhs)
    class(insitu_server), intent(inout) :: lhs
    class(insitu_server), intent(in) :: rhs
    integer :: status
    if (c_associated(lhs%p, rhs%p)) return
    status = c_server_free(lhs%p)
    lhs%p = c_null_ptr
  end subroutine server_assign

  subroutine server_final(self)
    type(insitu_server), intent(inout) :: self
    integer :: status
    status = c_server_free(self%p)
    self%p = c_null_ptr
  end subroutine server_final

  include "insitu_arrays.inc"

end module insitu
