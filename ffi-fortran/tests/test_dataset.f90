! insitu_dataset from Fortran: tensors of several kinds and ranks in both layouts,
! metadata of every scalar kind and strings (one longer than the first read buffer),
! datasets stored, fetched, polled and deleted, aggregation lists, and the errors with
! their exact messages. Run by CTest; prints "Fortran datasets: all checks passed".
program test_dataset
  use, intrinsic :: iso_fortran_env
  use, intrinsic :: iso_c_binding, only: c_int, c_char, c_null_char
  use insitu
  implicit none
  type(insitu_client) :: c
  type(insitu_dataset) :: ds, got, copy
  type(insitu_client) :: other
  type(insitu_dataset), allocatable :: many(:)
  integer :: ierr, i, failures
  real(real64) :: u(3, 4), u2(3, 4), ut(4, 3)
  integer(int32) :: k(2, 3, 2), k2(2, 3, 2)
  logical :: mask(5), mask2(5)
  real(real64), allocatable :: d(:)
  real(real32), allocatable :: f(:)
  integer(int32), allocatable :: i32(:)
  integer(int64), allocatable :: i64(:)
  character(len=300) :: long
  failures = 0

  u = reshape([(real(i, real64) * 0.25_real64, i = 1, 12)], [3, 4])
  k = reshape([(int(i * 7 - 40, int32), i = 1, 12)], [2, 3, 2])
  mask = [.true., .false., .false., .true., .true.]
  do i = 1, len(long)
    long(i:i) = achar(iachar('a') + mod(i, 26))
  end do

  ! Without an address, the client connects to the one in SSDB (as SmartRedis does).
  call set_env("SSDB", "")
  call set_env("INSITU_ADDRESS", "")
  call c%connect(ierr=ierr)
  if (ierr == INSITU_STATUS_OK) call fail("connect without SSDB must fail")
  if (insitu_last_error() /= "ERR no server address: set SSDB or INSITU_ADDRESS (e.g. inproc, " // &
      "127.0.0.1:6780 or unix:///tmp/insitu.sock)") call fail("no address message")
  call set_env("SSDB", "inproc")
  call c%connect()
  call ds%create("step_1")
  call ds%add_tensor("u", u)
  call ds%add_tensor("u_raw", u, layout=INSITU_LAYOUT_CONTIGUOUS)
  call ds%add_tensor("k", k)
  call ds%add_tensor("mask", mask)
  call ds%add_meta_scalar("time", 0.5_real64)
  call ds%add_meta_scalar("time", 1.5_real64)
  call ds%add_meta_scalar("dt", 0.25_real32)
  call ds%add_meta_scalar("step", 1_int32)
  call ds%add_meta_scalar("step", -2_int32)
  call ds%add_meta_scalar("cells", 12345678901_int64)
  call ds%add_meta_string("units", "K")
  call ds%add_meta_string("units", long)

  ! Before storing: the dataset reads back what was added.
  call ds%get_tensor("u", u2)
  if (any(u2 /= u)) call fail("local natural round trip")
  call ds%get_tensor("u_raw", ut)
  if (any(ut /= transpose(u))) call fail("local contiguous tensor read naturally is the transpose")

  call c%put_dataset(ds)
  if (.not. c%dataset_exists("step_1")) call fail("exists after put")
  if (.not. c%poll_dataset("step_1", 1, 1)) call fail("poll finds it")
  call c%get_dataset("step_1", got)

  u2 = 0
  call got%get_tensor("u", u2)
  if (any(u2 /= u)) call fail("stored natural round trip")
  u2 = 0
  call got%get_tensor("u_raw", u2, layout=INSITU_LAYOUT_CONTIGUOUS)
  if (any(u2 /= u)) call fail("stored contiguous round trip")
  call got%get_tensor("k", k2)
  if (any(k2 /= k)) call fail("int32 rank 3 round trip")
  call got%get_tensor("mask", mask2)
  if (any(mask2 .neqv. mask)) call fail("logical round trip")

  call got%get_meta_scalars("time", d)
  if (size(d) /= 2) call fail("two doubles")
  if (any(d /= [0.5_real64, 1.5_real64])) call fail("double values")
  call got%get_meta_scalars("dt", f)
  if (size(f) /= 1) call fail("one float")
  if (f(1) /= 0.25_real32) call fail("float value")
  call got%get_meta_scalars("step", i32)
  if (size(i32) /= 2) call fail("two int32")
  if (any(i32 /= [1_int32, -2_int32])) call fail("int32 values")
  call got%get_meta_scalars("cells", i64)
  if (size(i64) /= 1) call fail("one int64")
  if (i64(1) /= 12345678901_int64) call fail("int64 value")
  if (got%meta_string_count("units") /= 2) call fail("two strings")
  if (got%get_meta_string("units", 1) /= "K") call fail("first string")
  if (got%get_meta_string("units", 2) /= long) call fail("300-byte string")
  if (len(got%get_meta_string("units", 2)) /= 300) call fail("300-byte string length")

  ! Assignment: a dataset is deep-copied; a client is not copied.
  copy = got
  call got%add_meta_string("units", "only in got")
  if (copy%meta_string_count("units") /= 2) call fail("the copy is deep")
  call copy%get_tensor("k", k2)
  if (any(k2 /= k)) call fail("the copy holds the tensors")
  other = c
  if (other%tensor_exists("x", ierr=ierr)) call fail("an assigned client is closed")
  if (ierr /= INSITU_STATUS_NULL_ARGUMENT) call fail("an assigned client gives NULL_ARGUMENT")
  if (insitu_last_error() /= "client must not be NULL") call fail("assigned client message")
  if (.not. c%dataset_exists("step_1")) call fail("the original client still works")
  call got%create("step_1")
  call c%get_dataset("step_1", got)

  ! Errors: status and message, and the dataset is unchanged.
  call got%get_tensor("nope", u2, ierr=ierr)
  if (ierr /= INSITU_STATUS_NOT_FOUND) call fail("missing tensor gives NOT_FOUND")
  if (insitu_last_error() /= "ERR dataset 'step_1' has no tensor 'nope'") call fail("missing tensor message")
  call got%get_tensor("u", ut, ierr=ierr)
  if (ierr /= INSITU_STATUS_BAD_INPUT) call fail("wrong shape gives BAD_INPUT")
  if (insitu_last_error() /= "tensor 'u' does not have the array's shape") call fail("wrong shape message")
  call got%get_tensor("u", k2, ierr=ierr)
  if (ierr /= INSITU_STATUS_BAD_INPUT) call fail("wrong kind gives BAD_INPUT")
  if (insitu_last_error() /= "ERR tensor 'u' has dtype DOUBLE but the buffer holds INT32") &
    call fail("wrong kind message")
  call got%get_meta_scalars("time", i64, ierr=ierr)
  if (ierr /= INSITU_STATUS_BAD_INPUT) call fail("wrong metadata type gives BAD_INPUT")
  if (insitu_last_error() /= "ERR metadata field 'time' holds another type") call fail("wrong metadata type message")
  call got%get_meta_scalars("absent", d, ierr=ierr)
  if (ierr /= INSITU_STATUS_NOT_FOUND) call fail("missing field gives NOT_FOUND")
  if (insitu_last_error() /= "ERR dataset 'step_1' has no metadata field 'absent'") call fail("missing field message")
  call ds%add_meta_scalar("units", 1.0_real64, ierr=ierr)
  if (ierr /= INSITU_STATUS_BAD_INPUT) call fail("scalar into a string field gives BAD_INPUT")
  if (insitu_last_error() /= "ERR metadata field 'units' holds another type") call fail("scalar into strings message")
  if (got%get_meta_string("units", 3, ierr=ierr) /= "") call fail("string 3 is empty on error")
  if (ierr /= INSITU_STATUS_BAD_INPUT) call fail("string index past the end gives BAD_INPUT")
  if (insitu_last_error() /= "metadata field 'units' has 2 strings, no string 3") call fail("string index message")
  if (got%get_meta_string("units", 0, ierr=ierr) /= "") call fail("string 0 is empty on error")
  if (insitu_last_error() /= "metadata string index must be 1 or more") call fail("string index 0 message")
  call got%get_meta_scalars("time", d)
  if (any(d /= [0.5_real64, 1.5_real64])) call fail("metadata unchanged after errors")

  ! Aggregation lists.
  call ds%create("step_2")
  call ds%add_tensor("u", u * 2)
  call c%put_dataset(ds)
  call c%append_to_list("steps", ds)
  call ds%create("step_3")
  call ds%add_tensor("u", u * 3)
  call c%put_dataset(ds)
  call c%append_to_list("steps", ds)
  if (c%get_list_length("steps") /= 2) call fail("list length 2")
  if (.not. c%poll_list_length("steps", 2, 1, 1)) call fail("poll length 2")
  if (c%poll_list_length("steps", 3, 1, 2)) call fail("poll length 3 times out")
  call c%get_datasets_from_list("steps", many)
  if (size(many) /= 2) call fail("two datasets in the list")
  do i = 1, size(many)
    call many(i)%get_tensor("u", u2)
    if (any(u2 /= u * (i + 1))) call fail("dataset of the list in order")
  end do
  call c%get_dataset_list_range("steps", -1, -1, many)
  if (size(many) /= 1) call fail("range -1..-1 is one dataset")
  call many(1)%get_tensor("u", u2)
  if (any(u2 /= u * 3)) call fail("range -1..-1 is the last dataset")
  call c%get_datasets_from_list("no_such_list", many)
  if (size(many) /= 0) call fail("a missing list is empty, as in Redis")
  call c%get_dataset("step_3", got)
  call got%get_tensor("u", u2)
  if (any(u2 /= u * 3)) call fail("the last dataset of the list")

  call c%delete_dataset("step_1")
  if (c%dataset_exists("step_1")) call fail("deleted")
  call c%get_dataset("step_1", got, ierr=ierr)
  if (ierr /= INSITU_STATUS_NOT_FOUND) call fail("deleted dataset gives NOT_FOUND")
  call got%get_tensor("u", u2)
  if (any(u2 /= u * 3)) call fail("failed get_dataset leaves the dataset as it was")

  call c%close()
  if (failures > 0) then
    print '(i0, a)', failures, " checks failed"
    error stop 1
  end if
  print '(a)', "Fortran datasets: all checks passed"
contains
  !> Set (or, with an empty value, unset) an environment variable.
  subroutine set_env(name, value)
    character(len=*), intent(in) :: name, value
    interface
      integer(c_int) function setenv(name, value, overwrite) bind(C, name="setenv")
        import :: c_int, c_char
        character(kind=c_char), intent(in) :: name(*), value(*)
        integer(c_int), value :: overwrite
      end function setenv
      integer(c_int) function unsetenv(name) bind(C, name="unsetenv")
        import :: c_int, c_char
        character(kind=c_char), intent(in) :: name(*)
      end function unsetenv
    end interface
    if (len(value) == 0) then
      if (unsetenv(name // c_null_char) /= 0) call fail("unsetenv")
    else
      if (setenv(name // c_null_char, value // c_null_char, 1_c_int) /= 0) call fail("setenv")
    end if
  end subroutine set_env

  subroutine fail(what)
    character(len=*), intent(in) :: what
    print '(2a)', "FAILED: ", what
    failures = failures + 1
  end subroutine fail
end program test_dataset
