! Example 03: a Fortran array put with the default layout reads back in Python with the
! same indexing: a(i,j,k) == arr[i-1, j-1, k-1]; a dataset with metadata, appended to
! an aggregation list, reads back as a SmartRedis DataSet. (read_back.py checks every
! element and every value.)
program example03
  use, intrinsic :: iso_fortran_env, only: real64, int32
  use insitu
  implicit none
  type(insitu_client) :: c
  type(insitu_dataset) :: ds
  real(real64) :: a(3, 4, 2)
  integer(int32) :: ids(5)
  integer :: i, j, k
  character(len=256) :: address
  call get_command_argument(1, address)
  do k = 1, 2
    do j = 1, 4
      do i = 1, 3
        a(i, j, k) = 100.0_real64 * i + 10.0_real64 * j + k
      end do
    end do
  end do
  ids = [(i * i, i = 1, 5)]
  call c%connect(trim(address))
  call c%put_tensor("a", a)
  call c%put_tensor("ids", ids)
  call c%put_tensor("a_raw", a, layout=INSITU_LAYOUT_CONTIGUOUS)
  do k = 1, 2
    call ds%create("snapshot_" // achar(iachar('0') + k))
    call ds%add_tensor("field", a(:, :, k))
    call ds%add_meta_scalar("time", 0.5_real64 * k)
    call ds%add_meta_scalar("step", int(k, int32))
    call ds%add_meta_string("units", "K")
    call c%put_dataset(ds)
    call c%append_to_list("snapshots", ds)
  end do
  print '(a)', "example 03: Fortran put OK"
end program example03
